"""The domain: what a request, a job, a price, a period and an error are, and the pure rules about
them (validation, transitions, queue and polling policy, permissions). Imports nothing outside
`bot.domain`, no I/O."""
