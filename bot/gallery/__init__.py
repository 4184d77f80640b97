"""The web gallery and admin dashboard, on the bot's own HTTP server (mounted at /gallery).

    links.py    signed, timed, single-use links that `/sora gallery` answers with (itsdangerous)
    session.py  the encrypted session cookie (aiohttp-session) and the CSRF token
    guard.py    security headers on every answer; errors as pages, never tracebacks
    pages.py    what every page shares: the viewer, the CSRF check, the page frame
    archive.py  what the gallery reads, scoped to the viewer's workspace and to MEDIA_DIR
    present.py  a job in words: figures, status, where in chat it was posted
    routes.py   the pages and files, and `mount_gallery` (bot/web.py's one call)
    admin.py    the admin dashboard: usage, chart, team budget, approvals, limits
    templates/  Jinja2 (aiohttp-jinja2), autoescaped; static/: one CSS file and images

Every decision — who administers, approving, a limit — is the service's call (the same calls
as the chat's); this package renders and checks the web's own rules (session, CSRF, files).
Importing this package imports nothing else: bot/services imports `bot.gallery.links`.
"""
