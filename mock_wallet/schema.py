"""Idempotent schema migrations, applied on start and whenever the DB is first reached.

Each migration is a list of statements that are safe to run twice (IF NOT EXISTS), recorded in
`schema_version`, so a wallet that starts before its DB simply migrates on the first successful connect.
"""

from __future__ import annotations

CLEARING_ACCOUNT_ID = "00000000-0000-0000-0000-000000000001"

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE IF NOT EXISTS users (
            id uuid PRIMARY KEY,
            username text NOT NULL UNIQUE,
            password_hash bytea NOT NULL,
            password_salt bytea NOT NULL,
            pin_hash bytea NOT NULL,
            pin_salt bytea NOT NULL,
            failed_logins int NOT NULL DEFAULT 0,
            login_locked_until timestamptz,
            failed_pins int NOT NULL DEFAULT 0,
            pin_locked_until timestamptz,
            created_at timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE IF NOT EXISTS accounts (
            id uuid PRIMARY KEY,
            user_id uuid REFERENCES users(id),
            kind text NOT NULL CHECK (kind IN ('user', 'clearing')),
            balance bigint NOT NULL DEFAULT 0,
            currency text NOT NULL DEFAULT 'CNY',
            status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen')),
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT user_balance_not_negative CHECK (kind = 'clearing' OR balance >= 0))""",
        "CREATE INDEX IF NOT EXISTS accounts_user_idx ON accounts (user_id)",
        f"""INSERT INTO accounts (id, user_id, kind) VALUES ('{CLEARING_ACCOUNT_ID}', NULL, 'clearing')
            ON CONFLICT (id) DO NOTHING""",
        """CREATE TABLE IF NOT EXISTS sessions (
            token_hash bytea PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id),
            expires_at timestamptz NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS transactions (
            id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer')),
            status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
            amount bigint NOT NULL CHECK (amount > 0),
            from_account_id uuid REFERENCES accounts(id),
            to_account_id uuid REFERENCES accounts(id),
            user_id uuid NOT NULL REFERENCES users(id),
            idempotency_key text,
            failure_code text,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT transactions_user_key UNIQUE (user_id, idempotency_key))""",
        "CREATE INDEX IF NOT EXISTS transactions_from_idx ON transactions (from_account_id, created_at, id)",
        "CREATE INDEX IF NOT EXISTS transactions_to_idx ON transactions (to_account_id, created_at, id)",
        "CREATE INDEX IF NOT EXISTS transactions_pending_idx ON transactions (created_at) WHERE status = 'pending'",
        """CREATE TABLE IF NOT EXISTS ledger_entries (
            id bigserial PRIMARY KEY,
            txn_id uuid NOT NULL REFERENCES transactions(id),
            account_id uuid NOT NULL REFERENCES accounts(id),
            amount bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
        "CREATE INDEX IF NOT EXISTS ledger_entries_txn_idx ON ledger_entries (txn_id)",
        "CREATE INDEX IF NOT EXISTS ledger_entries_account_idx ON ledger_entries (account_id)",
        """CREATE TABLE IF NOT EXISTS idempotency_keys (
            user_id uuid NOT NULL REFERENCES users(id),
            key text NOT NULL,
            request_hash text NOT NULL,
            state text NOT NULL CHECK (state IN ('in_progress', 'done')),
            lease_until timestamptz NOT NULL,
            problem jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, key))""",
    ]),
]


# Planted bugs (mock_wallet/bugs.py) that model a wallet WITHOUT one of the schema's last lines of
# defence: applied after the migrations, on every start with the bug (the DB of a bugged run is scratch).
BUG_SCHEMA: dict[str, list[str]] = {
    "check-then-act": ["ALTER TABLE accounts DROP CONSTRAINT IF EXISTS user_balance_not_negative"],
    "memory-idempotency": [
        "ALTER TABLE transactions DROP CONSTRAINT IF EXISTS transactions_user_key",
        "CREATE INDEX IF NOT EXISTS transactions_user_key_idx ON transactions (user_id, idempotency_key)",
    ],
}


async def migrate(conn) -> int:  # conn: asyncpg.Connection
    """Apply missing migrations under an advisory lock (several wallets may share one DB)."""
    from mock_wallet import bugs

    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7428001)")
        await conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
            version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())""")
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING", version)
            current = version
        for name, statements in BUG_SCHEMA.items():
            if bugs.active(name):
                for statement in statements:
                    await conn.execute(statement)
        return current
