"""The application services: the job book, the ledger, the tracker, oversight, reports and
metrics, and the service interface adapters call (`bot.services.interface`). They use the domain
and reach the outside world only through `bot.infra`."""
