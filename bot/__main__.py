"""`python -m bot` is the same program as `sora-bot` (the outside contract names both).

An entry point, not part of the core: the one module under bot/ that may import sora_bot
(tests/core/test_layers.py exempts it by name)."""

import sys

from sora_bot.cli import main

sys.exit(main())
