"""In-process httpx transport: the client talks to the Sandbox without a socket."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.app import FAULT_HEADER, IN_PROCESS_KEY, Sandbox


class SandboxTransport(httpx.WSGITransport):
    """httpx transport over a Sandbox; a timeout fault raises httpx.ReadTimeout at once."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            environ[IN_PROCESS_KEY] = True
            return sandbox(environ, start_response)

        super().__init__(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Run the request through the Sandbox, turning its timeout marker into the exception."""
        response = super().handle_request(request)
        if response.headers.get(FAULT_HEADER) == "timeout":
            response.close()
            raise httpx.ReadTimeout("sandbox: injected read timeout", request=request)
        return response
