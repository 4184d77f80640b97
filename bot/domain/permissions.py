"""Who may do what: every "may this person do this" decision of the bot, in one place.

Adapters report facts, not decisions. An actor is a `Requester` — platform, workspace (the
Slack team, the Discord guild, ``dm``), user — plus one platform fact, `workspace_admin`:
"this person administers the workspace this event came from", as the platform says it
(Discord: the Manage Server permission in that guild; Slack: users.info `is_admin` or
`is_owner`). The CLI's actor is a plain string: whoever runs it on the host. This module
turns those facts and ADMIN_USER_IDS into yes or no.

Rules (the invariants):
- Every decision is about the TARGET's scope, the (platform, workspace) of the job, approval,
  user, team or report acted on — never the scope the actor happens to stand in.
- An operator admin (a ``platform:user`` entry of ADMIN_USER_IDS) administers every workspace
  of that platform and nothing on another platform. Ids are compared exactly.
- A workspace admin administers only the workspace the event came from: the fact is true of
  (actor.platform, actor.workspace) and says nothing about any other workspace. A Discord DM
  (``dm``) is nobody's workspace: adapters never set the fact there.
- To administer a scope is to be allowed, there: to cancel anyone's job, to approve or deny
  its requests, to grant credits, to set user, role and team limits, and to read its usage.
  A target of every workspace of a platform (``workspace=None``) needs an operator admin of
  that platform; a target of every platform (``platform=None``) only the CLI.
- The person who asked for a job (same platform, workspace and user) may cancel and remix it;
  anyone in the job's workspace may run it again as their own job.
- The CLI (a string actor) is trusted for everything.
- A refusal is `PermissionDenied` in words that say what would be needed; the caller does
  nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.errors import PermissionDenied
from bot.domain.models import Requester

#: Who acts: a chat user with the platform's facts, or the CLI (any string, trusted).
Actor = Requester | str

ADMINS_ONLY = "Only budget admins can do that."
OTHER_WORKSPACE = (
    "Only budget admins of the workspace it belongs to can do that: being an admin of yours "
    "gives no say over another workspace."
)
OTHER_PLATFORM = "Only budget admins can do that: it belongs to another platform."
EVERY_WORKSPACE = "Only operator admins (ADMIN_USER_IDS) can do that for every workspace at once."
EVERY_PLATFORM = "Only the command line can do that for every platform at once."


def actor_id(actor: Actor) -> str:
    """How the audit log and decisions name the actor: ``platform:user``, or the CLI's string."""
    return actor if isinstance(actor, str) else f"{actor.platform}:{actor.user}"


class Permissions:
    """The rules above, over one set of operator admins (`Settings.admin_ids`)."""

    def __init__(self, operators: Iterable[tuple[str, str]]) -> None:
        self.operators = frozenset(operators)

    def is_operator(self, actor: Requester) -> bool:
        """Listed in ADMIN_USER_IDS for the actor's platform."""
        return (actor.platform, actor.user) in self.operators

    def administers(self, actor: Actor, platform: str | None, workspace: str | None) -> bool:
        """May `actor` do admin actions on (platform, workspace)? None means "every one"."""
        return self._refusal(actor, platform, workspace) is None

    def may_administer(self, actor: Actor) -> bool:
        """Does `actor` administer the workspace they are in (e.g. to see its admin views)?"""
        if isinstance(actor, str):
            return True
        return self.administers(actor, actor.platform, actor.workspace)

    def require_admin(self, actor: Actor, platform: str | None, workspace: str | None) -> str:
        """The actor's id if they administer (platform, workspace); PermissionDenied otherwise."""
        refusal = self._refusal(actor, platform, workspace)
        if refusal is not None:
            raise PermissionDenied(refusal)
        return actor_id(actor)

    def require_owner_or_admin(self, actor: Actor, owner: Requester, verb: str) -> str:
        """The actor's id if they asked for the job `owner` asked for, or administer its
        workspace; PermissionDenied naming who may `verb` it otherwise."""
        if isinstance(actor, Requester) and _same_person(actor, owner):
            return actor_id(actor)
        refusal = self._refusal(actor, owner.platform, owner.workspace)
        if refusal is None:
            return actor_id(actor)
        whose = " of its workspace" if refusal == OTHER_WORKSPACE else ""
        raise PermissionDenied(
            f"Only the person who asked for this video or an admin{whose} can {verb} it."
        )

    def require_same_workspace(self, actor: Actor, owner: Requester) -> None:
        """Running a job again is for people of the job's workspace (the CLI too)."""
        if isinstance(actor, str):
            return
        if (actor.platform, actor.workspace) != (owner.platform, owner.workspace):
            raise PermissionDenied("That job belongs to another workspace.")

    def _refusal(self, actor: Actor, platform: str | None, workspace: str | None) -> str | None:
        """Why `actor` does not administer (platform, workspace); None when they do."""
        if isinstance(actor, str):
            return None
        if platform is None:
            return EVERY_PLATFORM
        if actor.platform != platform:
            return OTHER_PLATFORM
        if self.is_operator(actor):
            return None
        if workspace is None:
            return EVERY_WORKSPACE
        if actor.workspace != workspace:
            return OTHER_WORKSPACE if actor.workspace_admin else ADMINS_ONLY
        return None if actor.workspace_admin else ADMINS_ONLY


def _same_person(actor: Requester, owner: Requester) -> bool:
    return (actor.platform, actor.workspace, actor.user) == (
        owner.platform,
        owner.workspace,
        owner.user,
    )
