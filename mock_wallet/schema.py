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
    (2, [
        # per-account entry numbering and running balance (the export's `entries`): the account row
        # carries its last entry number, bumped by the same UPDATE that moves the balance
        "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS entry_seq bigint NOT NULL DEFAULT 0",
        "ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS seq bigint",
        "ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS balance_after bigint",
        # entries written before this migration: numbered in id order
        """UPDATE ledger_entries e SET seq = r.seq, balance_after = r.balance_after
           FROM (SELECT id, row_number() OVER w AS seq, sum(amount) OVER w AS balance_after
                 FROM ledger_entries WINDOW w AS (PARTITION BY account_id ORDER BY id)) r
           WHERE r.id = e.id AND e.seq IS NULL""",
        """UPDATE accounts a SET entry_seq = c.n
           FROM (SELECT account_id, count(*) AS n FROM ledger_entries GROUP BY account_id) c
           WHERE c.account_id = a.id AND a.entry_seq = 0""",
        "ALTER TABLE ledger_entries ALTER COLUMN seq SET NOT NULL",
        "ALTER TABLE ledger_entries ALTER COLUMN balance_after SET NOT NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS ledger_entries_account_seq_idx ON ledger_entries (account_id, seq)",
        "DROP INDEX IF EXISTS ledger_entries_account_idx",  # a prefix of the index above
    ]),
]


async def migrate(conn) -> int:  # conn: asyncpg.Connection
    """Apply missing migrations under an advisory lock (several wallets may share one DB)."""
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
        return current
