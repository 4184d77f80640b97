"""The entry points: the `sora-bot` command line and `sora-bot run`.

The only package that imports both the core (`bot/`) and the adapters (`adapters/`): it
chooses which platforms run and hands their factories to `bot.bootstrap.running_process`.
"""
