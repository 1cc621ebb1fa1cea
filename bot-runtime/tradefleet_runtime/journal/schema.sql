-- tradefleet journal schema, version 6 (journal/versions.py migrates older files or refuses
-- them). One file per bot; a run is one start of the bot.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    bot TEXT NOT NULL,
    mode TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    initial_capital REAL NOT NULL,
    timeframe_s INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    summary TEXT
);
-- An order's details, written once (but a bracket child's quantity, which grows with its entry's
-- fills: each resize is in its log too); its life is the append-only log in order_updates.
CREATE TABLE IF NOT EXISTS orders (
    run_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL,
    stop_loss REAL,
    take_profit REAL,
    reduce_only INTEGER NOT NULL,
    parent_id TEXT,
    created_ts INTEGER NOT NULL,
    tag TEXT NOT NULL DEFAULT '',
    -- The price the order was decided at: its own (limit, trigger; a bracket child's), else the
    -- symbol's mark when the risk chain let it through. A fill's slippage is measured against
    -- it. NULL: not known (no mark yet, or an order journaled before schema version 5).
    reference_price REAL,
    PRIMARY KEY (run_id, client_order_id)
);
CREATE TABLE IF NOT EXISTS order_updates (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    venue_order_id TEXT
);
CREATE INDEX IF NOT EXISTS order_updates_by_order ON order_updates (run_id, client_order_id);
-- Each order with its latest status.
CREATE VIEW IF NOT EXISTS order_status AS
    SELECT o.*, u.status, u.reason, u.ts AS updated_ts, u.venue_order_id
    FROM orders o JOIN order_updates u ON u.id = (
        SELECT MAX(id) FROM order_updates
        WHERE run_id = o.run_id AND client_order_id = o.client_order_id);
CREATE TABLE IF NOT EXISTS fills (
    run_id TEXT NOT NULL,
    fill_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    ts INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, fill_id)
);
CREATE TABLE IF NOT EXISTS positions (
    run_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    quantity REAL NOT NULL,
    average_price REAL NOT NULL,
    realized_pnl REAL NOT NULL,
    updated_ts INTEGER NOT NULL,
    PRIMARY KEY (run_id, symbol)
);
CREATE TABLE IF NOT EXISTS trades (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    direction INTEGER NOT NULL,
    quantity REAL NOT NULL,
    entry_ts INTEGER NOT NULL,
    exit_ts INTEGER NOT NULL,
    entry_price REAL NOT NULL,
    exit_price REAL NOT NULL,
    gross_pnl REAL NOT NULL,
    fees REAL NOT NULL,
    -- The reasons (order tag or type) of the opening and the closing fill; a position open
    -- when a backtest's data ended is journaled as a trade with exit_reason 'end of data'.
    entry_reason TEXT NOT NULL DEFAULT '',
    exit_reason TEXT NOT NULL DEFAULT '',
    -- Funding the venue paid (+) or charged (-) the position while the trade held it.
    funding REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
);
-- The bars a run traded, per symbol: how many, the first open and the last close (the
-- buy-and-hold benchmark of the report), written once at the end of a backtest.
CREATE TABLE IF NOT EXISTS run_symbols (
    run_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    bars INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    first_open REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    last_close REAL NOT NULL,
    PRIMARY KEY (run_id, symbol)
);
-- Per-bar equity, in chunks: each row packs consecutive snapshots as little-endian arrays
-- (ts: int64, equity and exposure: float64). A row per bar would cost more than the bar.
CREATE TABLE IF NOT EXISTS equity_chunks (
    run_id TEXT NOT NULL,
    first_ts INTEGER NOT NULL,
    count INTEGER NOT NULL,
    ts BLOB NOT NULL,
    equity BLOB NOT NULL,
    exposure BLOB NOT NULL,
    PRIMARY KEY (run_id, first_ts)
);
CREATE TABLE IF NOT EXISTS risk_decisions (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    plugin TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    action TEXT NOT NULL,
    quantity_in REAL,
    quantity_out REAL,
    reason TEXT NOT NULL DEFAULT '',
    client_order_id TEXT,
    -- The decision's short fixed word (RiskDecision.code: "daily_loss", "lot_step"), what the
    -- metrics count it by; '' for a plain approval and for decisions before schema version 8.
    code TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS fills_by_order ON fills (run_id, client_order_id);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (run_id, kind);
-- External signals by id: a repeated signal_id returns the first outcome (idempotency key).
CREATE TABLE IF NOT EXISTS signals (
    signal_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    client_order_id TEXT NOT NULL DEFAULT '',
    -- What the signal asked for (service.api.signal_digest): the id again with other content
    -- is refused, not answered with this outcome. '': journaled before schema version 6.
    digest TEXT NOT NULL DEFAULT ''
);
-- The venue's payments outside fills (funding of perpetual futures), by the venue's id.
-- ``booked`` 0: in another currency than the account's, journaled but not in its cash.
CREATE TABLE IF NOT EXISTS cash_flows (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount REAL NOT NULL,
    ts INTEGER NOT NULL,
    booked INTEGER NOT NULL
);
