"""Write a git-ignored .env for local runs: a fresh Fernet key, a secret key, demo mode on."""

import secrets
from pathlib import Path

from cryptography.fernet import Fernet

env_file = Path(__file__).resolve().parent.parent / ".env"
if env_file.exists():
    raise SystemExit(0)
env_file.write_text(
    "# Local settings written by `make run`; never commit this file.\n"
    f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    f"CREDENTIALS_KEYS={Fernet.generate_key().decode()}\n"
    "DEMO_MODE=true\n"
)
env_file.chmod(0o600)
print(f"Wrote {env_file.name} with a new credentials key (keep it: it decrypts your stored connections).")
