# The one image of docker-compose.yml: the API (gunicorn), the worker, beat, Flower, the
# migration step and the sandbox all run `tinysync …` or gunicorn from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY cli ./cli
COPY core ./core
COPY api ./api
COPY worker ./worker
COPY sandbox ./sandbox
COPY migrations ./migrations
RUN pip install -c requirements/constraints.txt . \
    && useradd --create-home --uid 10001 tinysync
USER tinysync
WORKDIR /home/tinysync

EXPOSE 8000 5555 8800
CMD ["tinysync", "--help"]
