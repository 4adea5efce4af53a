"""The schema: runs and logs with the seed's Prisma names, companies, and the synced data."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import ReturnTypeFromArgs
from sqlalchemy.types import TypeDecorator, TypeEngine

CENT = Decimal("0.01")
QUANTITY_STEP = Decimal("0.0001")


def stored_decimal(value: object) -> Decimal | None:
    """Whatever a numeric column holds (int, float, text, Decimal) as a finite Decimal, or None."""
    if value is None or isinstance(value, bool | bytes):
        return None
    try:
        amount = (
            value
            if isinstance(value, Decimal)
            else Decimal(repr(value) if isinstance(value, float) else str(value))
        )
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


class Money(TypeDecorator[Decimal]):
    """Money: NUMERIC(16,2) on PostgreSQL; exact integer cents on SQLite, whose NUMERIC is REAL.

    Reading never fails on what the column may hold: NaN (PostgreSQL numeric accepts it), a
    float or text left in a SQLite column come back as None when they are not a number.
    """

    impl = Numeric(16, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(16, 2))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        amount = stored_decimal(value)
        if amount is None:
            raise ValueError(f"money must be a finite number, not {value!r}")
        return int(amount.scaleb(2).to_integral_value(ROUND_HALF_EVEN))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        amount = stored_decimal(value)
        if amount is None:
            return None
        with localcontext() as ctx:
            ctx.prec = 60  # a sum of many amounts may pass the default 28 digits
            if dialect.name == "sqlite":
                amount = amount.scaleb(-2)
            return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


class Quantity(TypeDecorator[Decimal]):
    """A quantity, NUMERIC(16,4); what is not a finite number (NaN, text on SQLite) reads None."""

    impl = Numeric(16, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # Read SQLite's raw value here: Numeric's own reader fails on text the column holds.
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(16, 4, asdecimal=False))
        return dialect.type_descriptor(Numeric(16, 4))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        amount = stored_decimal(value)
        if amount is None or amount.adjusted() >= 16:
            return None
        return amount.quantize(QUANTITY_STEP, rounding=ROUND_HALF_EVEN)


class money_sum(ReturnTypeFromArgs[Decimal | None]):  # lower case, as SQL functions are
    """`sum()` of money, exact on both databases and blind to NaN.

    PostgreSQL sums NUMERIC exactly; NaN (which a numeric column accepts) is left out. On
    SQLite the columns hold integer cents and `money_sum` is the aggregate core.db registers,
    which adds them in Python, so a total past 2**63 cents does not overflow.
    """

    inherit_cache = True


@compiles(money_sum, "postgresql")
def _money_sum_postgresql(element: money_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sum(NULLIF({compiler.process(element.clauses, **kw)}, 'NaN'))"


class MoneySumAggregate:
    """SQLite's `money_sum(cents)`: exact, whatever size; skips what is not a number."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: object) -> None:
        amount = stored_decimal(value)
        if amount is not None:
            with localcontext() as ctx:
                ctx.prec = 60
                self.total = amount if self.total is None else self.total + amount

    def finalize(self) -> int | str | None:
        if self.total is None:
            return None
        if self.total == self.total.to_integral_value() and abs(self.total) < 2**63:
            return int(self.total)
        return str(self.total)  # past SQLite's integers: text, which Money reads back exactly


MONEY = Money()
QUANTITY = Quantity()
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
    """A company whose Tiny account is synced; its token (or v3 OAuth pair) stored encrypted."""

    __tablename__ = "Company"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    tinyTokenEncrypted: Mapped[str] = mapped_column(Text)
    #: A keyed hash of the token: companies sharing one Tiny account share its rate limit.
    tinyAccountKey: Mapped[str] = mapped_column(String(64), index=True)
    #: Calls a minute to pace its account to, instead of the limit Tiny announces (None).
    tinyCallsPerMinute: Mapped[int | None] = mapped_column(Integer)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Which Tiny API the company is read through: `v2` (the token above) or `v3` (OAuth).
    apiVersion: Mapped[str] = mapped_column(String(2), default="v2", server_default="v2")
    #: v3: the OAuth app (client id; secret encrypted like the v2 token) and its token pair,
    #: encrypted, with when each lapses. `needsReconnect`: the refresh token no longer works
    #: and only a person authorising again in the browser brings the company back.
    v3ClientId: Mapped[str | None] = mapped_column(String(200))
    v3ClientSecretEncrypted: Mapped[str | None] = mapped_column(Text)
    v3AccessTokenEncrypted: Mapped[str | None] = mapped_column(Text)
    v3AccessExpiresAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    v3RefreshTokenEncrypted: Mapped[str | None] = mapped_column(Text)
    v3RefreshExpiresAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    v3TokenRefreshedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    needsReconnect: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    needsReconnectReason: Mapped[str | None] = mapped_column(String(500))


class UiSession(Base):
    """A signed-in browser: the SHA-256 of its cookie's random id, never the id itself."""

    __tablename__ = "UiSession"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime())
    lastSeenAt: Mapped[datetime] = mapped_column(UTCDateTime())
    revokedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInLink(Base):
    """A one-time sign-in link (`tinysync demo --serve`): the SHA-256 of its token, never it."""

    __tablename__ = "SignInLink"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime())
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime())
    usedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())


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
    __table_args__ = (
        Index("ix_SyncRunLog_runId_timestamp", "runId", "timestamp"),
        Index("ix_SyncRunLog_timestamp", "timestamp"),
    )

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
    #: Set once Tiny confirmed the record is gone (code 32, situacao E); the row is kept.
    deletedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When a listing last served the record (rows a complete listing missed are re-read).
    listedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())


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
    #: Set once Tiny confirmed the record is gone (code 32, situacao E); the row is kept.
    deletedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When a listing last served the record (rows a complete listing missed are re-read).
    listedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())


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
    #: Set once Tiny confirmed the record is gone (code 32, situacao E); the row is kept.
    deletedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When a listing last served the record (rows a complete listing missed are re-read).
    listedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
