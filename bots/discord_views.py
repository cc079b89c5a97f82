"""The Discord adapter's buttons: Verify / Report / Delete / Retry under a clip, Allow / Decline.

Appeal sits under a moderation refusal, for the requester only, and opens a form asking why
(``AppealForm``); Take down / Dismiss sit under the moderators' notice of a report or an appeal,
for members who can manage messages.

Each button is a persistent ``DynamicItem``: its custom id carries what it needs (a ledger id, a
job id, a consent id, a report id), so a button still works after a restart. A press is handed
to the cog (``bots.discord_cogs.PhotoCog``), which holds the flows.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

import discord

from bots.i18n import t
from core.types import Stage, Verdict

if TYPE_CHECKING:
    from bots.discord_cogs import PhotoCog

Button = discord.ui.Button[discord.ui.View]
REPORT_ID = re.compile(r"^alive:report:([0-9a-f]{12})$")
# NOTE: what the appeal form accepts; Telegram's /appeal takes "a few words", and the notice
# must stay well under Discord's 2000-character message limit with the decision line after it.
APPEAL_REASON_MAX = 300
# NOTE: discord.py dispatches a modal submit only to a Modal instance it holds in memory (its
# ViewStore matches the exact custom id; unlike buttons there is no DynamicItem for modals), so
# a form left open longer than this, or across a restart, is discarded; pressing Appeal again
# opens a new one.
APPEAL_FORM_TIMEOUT_S = 600.0


def clip_view(ledger_id: str, requester: int, job_id: str, lang: str = "en") -> discord.ui.View:
    """Return the clip's buttons: Verify, Report, Delete (requester only), Retry."""
    view = discord.ui.View(timeout=None)
    view.add_item(VerifyButton(ledger_id, lang))
    view.add_item(ReportButton(ledger_id, lang))
    view.add_item(DeleteButton(ledger_id, requester, lang))
    view.add_item(RetryButton(job_id, lang))
    return view


def consent_view(consent_id: str, lang: str = "en") -> discord.ui.View:
    """Return the Allow / Decline buttons for the owner of a photo."""
    view = discord.ui.View(timeout=None)
    view.add_item(ConsentButton(consent_id, True, lang))
    view.add_item(ConsentButton(consent_id, False, lang))
    return view


def appeal_view(
    verdict: Verdict, job_id: str, requester: int, lang: str = "en"
) -> discord.ui.View | None:
    """Return the Appeal button for a moderation refusal; None for an input error."""
    if verdict.stage is Stage.INPUT:  # a bad file or size: nothing for a moderator to judge
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(AppealButton(job_id, verdict.code, requester, lang))
    return view


def moderation_view(report_id: int, *, take_down: bool, lang: str = "en") -> discord.ui.View:
    """Return the moderators' buttons for a queue item: Take down (reports only), Dismiss."""
    view = discord.ui.View(timeout=None)
    if take_down:
        view.add_item(ModerateButton(report_id, True, lang))
    view.add_item(ModerateButton(report_id, False, lang))
    return view


def custom_ids(message: discord.Message) -> list[str]:
    """Return the custom ids of every component of a message."""
    ids = []
    for row in message.components:
        for child in getattr(row, "children", []):
            custom_id = getattr(child, "custom_id", None)
            if custom_id:
                ids.append(custom_id)
    return ids


def report_ids(message: discord.Message) -> list[str]:
    """Return the ledger ids of the Report buttons of a message (our clips carry one)."""
    return [m.group(1) for m in map(REPORT_ID.match, custom_ids(message)) if m]


def _cog(interaction: discord.Interaction) -> PhotoCog:
    cog = interaction.client.get_cog("PhotoCog")  # type: ignore[attr-defined]
    assert cog is not None, "PhotoCog is not loaded"
    return cog  # type: ignore[no-any-return]


class VerifyButton(discord.ui.DynamicItem[Button], template=r"alive:verify:(?P<id>[0-9a-f]{12})"):
    """Verifies the stored clip, privately."""

    def __init__(self, ledger_id: str, lang: str = "en") -> None:
        super().__init__(
            discord.ui.Button(label=t("button.verify", lang), custom_id=f"alive:verify:{ledger_id}")
        )
        self.ledger_id = ledger_id

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> VerifyButton:
        """Rebuild from the custom id."""
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Verify."""
        await _cog(interaction).verify_ledger_clip(interaction, self.ledger_id)


class ReportButton(discord.ui.DynamicItem[Button], template=r"alive:report:(?P<id>[0-9a-f]{12})"):
    """Reports the clip to the moderators."""

    def __init__(self, ledger_id: str, lang: str = "en") -> None:
        super().__init__(
            discord.ui.Button(
                label=t("button.report", lang), style=discord.ButtonStyle.secondary,
                custom_id=f"alive:report:{ledger_id}",
            )
        )  # fmt: skip
        self.ledger_id = ledger_id

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> ReportButton:
        """Rebuild from the custom id."""
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Report."""
        await _cog(interaction).file_report(interaction, self.ledger_id, "")


class DeleteButton(
    discord.ui.DynamicItem[Button],
    template=r"alive:delete:(?P<id>[0-9a-f]{12}):(?P<user>[0-9]+)",
):
    """Deletes the clip message; only for the requester."""

    def __init__(self, ledger_id: str, requester: int, lang: str = "en") -> None:
        super().__init__(
            discord.ui.Button(
                label=t("button.delete", lang), style=discord.ButtonStyle.danger,
                custom_id=f"alive:delete:{ledger_id}:{requester}",
            )
        )  # fmt: skip
        self.requester = requester

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> DeleteButton:
        """Rebuild from the custom id."""
        return cls(match["id"], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Delete."""
        await _cog(interaction).delete_clip(interaction, self.requester)


class RetryButton(discord.ui.DynamicItem[Button], template=r"alive:retry:(?P<job>[0-9a-f]+)"):
    """Runs the same photo again with another seed."""

    def __init__(self, job_id: str, lang: str = "en") -> None:
        super().__init__(
            discord.ui.Button(
                label=t("button.retry", lang), style=discord.ButtonStyle.secondary,
                custom_id=f"alive:retry:{job_id}",
            )
        )  # fmt: skip
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: re.Match[str]) -> RetryButton:
        """Rebuild from the custom id."""
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Retry."""
        await _cog(interaction).retry(interaction, self.job_id)


class ConsentButton(
    discord.ui.DynamicItem[Button],
    template=r"alive:consent:(?P<id>[0-9a-f]{12}):(?P<allow>[01])",
):
    """The photo owner's answer to a request to animate their photo (only they may press it)."""

    def __init__(self, consent_id: str, allow: bool, lang: str = "en") -> None:
        key, style = (
            ("button.allow", discord.ButtonStyle.success)
            if allow
            else ("button.decline", discord.ButtonStyle.secondary)
        )
        super().__init__(
            discord.ui.Button(
                label=t(key, lang), style=style,
                custom_id=f"alive:consent:{consent_id}:{int(allow)}",
            )
        )  # fmt: skip
        self.consent_id, self.allow = consent_id, allow

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> ConsentButton:
        """Rebuild from the custom id."""
        return cls(match["id"], match["allow"] == "1")

    async def callback(self, interaction: discord.Interaction) -> None:
        """Answer."""
        await _cog(interaction).answer_consent(interaction, self.consent_id, self.allow)


class AppealButton(
    discord.ui.DynamicItem[Button],
    template=r"alive:appeal:(?P<job>[0-9a-f]+):(?P<code>[a-z_]+):(?P<user>[0-9]+)",
):
    """Asks the moderators to look again at a blocked request; only for the requester."""

    def __init__(self, job_id: str, code: str, requester: int, lang: str = "en") -> None:
        super().__init__(
            discord.ui.Button(
                label=t("button.appeal", lang), style=discord.ButtonStyle.secondary,
                custom_id=f"alive:appeal:{job_id}:{code}:{requester}",
            )
        )  # fmt: skip
        self.job_id, self.code, self.requester = job_id, code, requester

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> AppealButton:
        """Rebuild from the custom id."""
        return cls(match["job"], match["code"], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Ask the requester why, in a form."""
        await _cog(interaction).open_appeal(interaction, self.job_id, self.code, self.requester)


class AppealForm(discord.ui.Modal):
    """The Appeal button's form: one optional paragraph for the moderators, then the appeal.

    Its custom id carries the job, the code and the requester as the button's does, plus a nonce:
    discord.py forgets a form by its custom id when it times out or is submitted, so two forms
    opened by two presses must not share one.
    """

    def __init__(self, job_id: str, code: str, requester: int, lang: str = "en") -> None:
        super().__init__(
            title=t("report.appeal_form_title", lang), timeout=APPEAL_FORM_TIMEOUT_S,
            custom_id=f"alive:appeal-form:{job_id}:{code}:{requester}:{secrets.token_hex(4)}",
        )  # fmt: skip
        self.reason: discord.ui.TextInput[AppealForm] = discord.ui.TextInput(
            custom_id="reason", style=discord.TextStyle.paragraph, required=False,
            max_length=APPEAL_REASON_MAX, placeholder=t("report.appeal_form_placeholder", lang),
        )  # fmt: skip
        # A Label, not TextInput(label=...): discord.py 2.6 deprecated the latter (and Discord
        # its action-row layout in modals).
        self.add_item(
            discord.ui.Label(text=t("report.appeal_form_label", lang), component=self.reason)
        )
        self.job_id, self.code, self.requester = job_id, code, requester

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """File the appeal with the reason given (possibly none)."""
        await _cog(interaction).file_appeal(
            interaction, self.job_id, self.code, self.requester, self.reason.value
        )

    # Modal's own on_error drops BaseView's item argument; mypy holds us to BaseView's.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        """Log (never the reason) and apologise, as the cog does for a failed command."""
        await _cog(interaction).apologise(interaction, "appeal form", error)


class ModerateButton(
    discord.ui.DynamicItem[Button],
    template=r"alive:moderate:(?P<id>[0-9]+):(?P<action>[td])",
):
    """Takes the reported clip down, or dismisses the item; for members who manage messages."""

    def __init__(self, report_id: int, take_down: bool, lang: str = "en") -> None:
        key, style = (
            ("button.take_down", discord.ButtonStyle.danger)
            if take_down
            else ("button.dismiss", discord.ButtonStyle.secondary)
        )
        super().__init__(
            discord.ui.Button(
                label=t(key, lang), style=style,
                custom_id=f"alive:moderate:{report_id}:{'t' if take_down else 'd'}",
            )
        )  # fmt: skip
        self.report_id, self.take_down = report_id, take_down

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> ModerateButton:
        """Rebuild from the custom id."""
        return cls(int(match["id"]), match["action"] == "t")

    async def callback(self, interaction: discord.Interaction) -> None:
        """Resolve the item."""
        await _cog(interaction).moderate(interaction, self.report_id, self.take_down)


BUTTONS = (
    VerifyButton, ReportButton, DeleteButton, RetryButton, ConsentButton, AppealButton,
    ModerateButton,
)  # fmt: skip
