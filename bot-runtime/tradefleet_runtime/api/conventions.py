"""Names the runtime and the operator must agree on, outside the gRPC API itself.

The operator mounts the bot's ``<name>-api-token`` Secret as a folder and starts
``tradefleet serve --auth-dir`` on it, so the Secret's keys are the token files' names. It also
sets environment variables the runtime reads. One definition here keeps both sides in step
without the operator importing the runtime's service code.
"""

from __future__ import annotations

#: Token file that may call every RPC (a key of the bot's api-token Secret).
CONTROL_TOKEN_FILE = "control.token"
#: Token file that may call the read-only RPCs only (``GetStatus``, ``List*``, ``StreamEvents``).
READ_TOKEN_FILE = "read.token"

#: Folder with the broker's credentials (the mounted ``spec.broker.credentialsSecret``).
CREDENTIALS_DIR_ENV = "TRADEFLEET_CREDENTIALS_DIR"
