"""The schema: runs and logs with the seed's Prisma names, companies, and the synced data."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

MONEY = Numeric(16, 2)
QUANTITY = Numeric(16, 4)
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store them all in one zone, without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new UUID string, the seed's id format."""
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Company(Base):
    """A company whose Tiny account is synced; its token is stored encrypted."""

    __tablename__ = "Company"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    tinyTokenEncrypted: Mapped[str] = mapped_column(Text)
    #: A keyed hash of the token: companies sharing one Tiny account share its rate limit.
    tinyAccountKey: Mapped[str] = mapped_column(String(64), index=True)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncRun(Base):
    """One sync run; columns named as in the seed's Prisma model, plus lease and checkpoint."""

    __tablename__ = "SyncRun"
    __table_args__ = (
        # At most one QUEUED/RUNNING run per company, enforced by the database itself.
        Index(
            "uq_SyncRun_active_company",
            "companyId",
            unique=True,
            sqlite_where=text("status IN ('QUEUED', 'RUNNING')"),
            postgresql_where=text("status IN ('QUEUED', 'RUNNING')"),
        ),
        Index("ix_SyncRun_createdAt", "createdAt"),
        Index("ix_SyncRun_company_createdAt", "companyId", "createdAt"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    companyId: Mapped[str] = mapped_column(String(36), ForeignKey("Company.id"))
    mode: Mapped[str] = mapped_column(String(20))
    startDate: Mapped[datetime | None] = mapped_column(UTCDateTime())
    endDate: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: A `core.runs.RunStatus` value; `create_run` sets it, transitions change it.
    status: Mapped[str] = mapped_column(String(20))
    currentModule: Mapped[str | None] = mapped_column(String(64))
    progressJson: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    errorMessage: Mapped[str | None] = mapped_column(Text)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    startedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finishedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    triggeredByUserId: Mapped[str | None] = mapped_column(String(100))
    # Extra columns: who executes the run now, until when, and where each module stands.
    leaseOwner: Mapped[str | None] = mapped_column(String(100))
    leaseExpiresAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeatAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checkpointJson: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    updatedAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    tinyCalls: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    resumeCount: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class SyncRunLog(Base):
    """One line of a run's log."""

    __tablename__ = "SyncRunLog"
    __table_args__ = (Index("ix_SyncRunLog_runId_timestamp", "runId", "timestamp"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    runId: Mapped[str] = mapped_column(String(36), ForeignKey("SyncRun.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    level: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    module: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)


class SyncWatermark(Base):
    """Until when a company's module is known to be in sync (for incremental runs)."""

    __tablename__ = "SyncWatermark"

    companyId: Mapped[str] = mapped_column(String(36), ForeignKey("Company.id"), primary_key=True)
    module: Mapped[str] = mapped_column(String(64), primary_key=True)
    syncedUntil: Mapped[datetime] = mapped_column(UTCDateTime())
    runId: Mapped[str | None] = mapped_column(String(36))


class SalesOrder(Base):
    """A sales order (pedido), from the listing and, once enriched, its detail."""

    __tablename__ = "SalesOrder"
    __table_args__ = (
        UniqueConstraint("companyId", "tinyId"),
        Index("ix_SalesOrder_company_date", "companyId", "dataPedido"),
        Index("ix_SalesOrder_company_needs", "companyId", "needsEnrichment"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    companyId: Mapped[str] = mapped_column(String(36), ForeignKey("Company.id"))
    tinyId: Mapped[int] = mapped_column(BigInteger)
    numero: Mapped[str | None] = mapped_column(String(50))
    numeroEcommerce: Mapped[str | None] = mapped_column(String(100))
    dataPedido: Mapped[date | None] = mapped_column(Date)
    dataPrevista: Mapped[date | None] = mapped_column(Date)
    nomeCliente: Mapped[str | None] = mapped_column(String(300))
    valor: Mapped[Decimal | None] = mapped_column(MONEY)
    idVendedor: Mapped[int | None] = mapped_column(BigInteger)
    nomeVendedor: Mapped[str | None] = mapped_column(String(200))
    situacao: Mapped[str | None] = mapped_column(String(60))
    codigoRastreamento: Mapped[str | None] = mapped_column(String(100))
    #: Hash of the listing fields: a change means the order must be enriched again.
    listFingerprint: Mapped[str | None] = mapped_column(String(32))
    needsEnrichment: Mapped[bool] = mapped_column(Boolean, default=True)
    enrichedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dataFaturamento: Mapped[date | None] = mapped_column(Date)
    cpfCnpj: Mapped[str | None] = mapped_column(String(30))
    totalProdutos: Mapped[Decimal | None] = mapped_column(MONEY)
    totalPedido: Mapped[Decimal | None] = mapped_column(MONEY)
    valorDesconto: Mapped[Decimal | None] = mapped_column(MONEY)
    valorFrete: Mapped[Decimal | None] = mapped_column(MONEY)
    syncedAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SalesOrderItem(Base):
    """A line of an enriched sales order."""

    __tablename__ = "SalesOrderItem"
    __table_args__ = (UniqueConstraint("companyId", "orderTinyId", "position"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    companyId: Mapped[str] = mapped_column(String(36), ForeignKey("Company.id"))
    orderTinyId: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    codigo: Mapped[str | None] = mapped_column(String(100))
    descricao: Mapped[str | None] = mapped_column(String(500))
    quantidade: Mapped[Decimal | None] = mapped_column(QUANTITY)
    valorUnitario: Mapped[Decimal | None] = mapped_column(MONEY)


class _BillColumns:
    """Columns shared by payables and receivables (`contas`)."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    companyId: Mapped[str] = mapped_column(String(36), ForeignKey("Company.id"))
    tinyId: Mapped[int] = mapped_column(BigInteger)
    nomeCliente: Mapped[str | None] = mapped_column(String(300))
    historico: Mapped[str | None] = mapped_column(Text)
    numeroDoc: Mapped[str | None] = mapped_column(String(100))
    dataEmissao: Mapped[date | None] = mapped_column(Date)
    dataVencimento: Mapped[date | None] = mapped_column(Date)
    valor: Mapped[Decimal | None] = mapped_column(MONEY)
    saldo: Mapped[Decimal | None] = mapped_column(MONEY)
    situacao: Mapped[str | None] = mapped_column(String(30))
    syncedAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Payable(_BillColumns, Base):
    """A bill to pay (conta a pagar), open or paid."""

    __tablename__ = "Payable"
    __table_args__ = (
        UniqueConstraint("companyId", "tinyId"),
        Index("ix_Payable_company_due", "companyId", "dataVencimento"),
    )


class Receivable(_BillColumns, Base):
    """A bill to receive (conta a receber), open or received."""

    __tablename__ = "Receivable"
    __table_args__ = (
        UniqueConstraint("companyId", "tinyId"),
        Index("ix_Receivable_company_due", "companyId", "dataVencimento"),
    )

    numeroBanco: Mapped[str | None] = mapped_column(String(50))
    serieDoc: Mapped[str | None] = mapped_column(String(50))


class StockItem(Base):
    """A product with its stock balance (estoque)."""

    __tablename__ = "StockItem"
    __table_args__ = (UniqueConstraint("companyId", "tinyId"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    companyId: Mapped[str] = mapped_column(String(36), ForeignKey("Company.id"))
    tinyId: Mapped[int] = mapped_column(BigInteger)
    codigo: Mapped[str | None] = mapped_column(String(100))
    nome: Mapped[str | None] = mapped_column(String(300))
    unidade: Mapped[str | None] = mapped_column(String(20))
    preco: Mapped[Decimal | None] = mapped_column(MONEY)
    situacao: Mapped[str | None] = mapped_column(String(5))
    saldo: Mapped[Decimal | None] = mapped_column(QUANTITY)
    saldoReservado: Mapped[Decimal | None] = mapped_column(QUANTITY)
    depositosJson: Mapped[list[Any] | None] = mapped_column(JSONType)
    stockCheckedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    syncedAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
