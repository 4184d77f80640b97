"""`python -m sora_bot` is the same program as `sora-bot`."""

import sys

from sora_bot.cli import main

sys.exit(main())
