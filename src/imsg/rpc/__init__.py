"""JSON-RPC 2.0 server, in layers: ``transport`` (lines in, frames out), ``protocol`` (the
envelope), ``errors`` (one class per code), ``params`` (lenient parameters), ``methods`` (the
handlers, plain functions), ``subscriptions`` (watch streams), ``workers`` (threads for blocking
calls), ``server`` (sessions, stdio), ``listener`` (Unix socket), ``bridge`` (stdio to socket)."""
