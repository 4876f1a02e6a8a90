"""The sales accounts: `nurture users add`, `add-owners`, `list`, `update`, `reset`,
`unlock`, `disable`, `enable`.

Whoever runs these holds the server, so they act as an admin. A new account,
and a reset, print a one-time link for the person to choose their password
(`nurture.lifecycle.accounts`): pass it on to them; nothing else opens the
account. Registered on the main Typer app by `nurture.cli.app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nurture.cli.common import ProjectDir

if TYPE_CHECKING:
    from nurture.engine.runtime import Runtime

Email = Annotated[str, typer.Argument(help="The account's email address (handoffs' owner).")]
Role = Annotated[
    str, typer.Option(help="sales (own handoffs), lead (all), admin (all + accounts).")
]


def _link(runtime: Runtime, token: str) -> str:
    return f"{runtime.settings.base_url}/sales/password?token={token}"


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    users_app = typer.Typer(
        help="Sales accounts: who signs in to the inbox (/sales) and acts on handoffs.",
        no_args_is_help=True,
    )
    app.add_typer(users_app, name="users")

    def _print_link(runtime: Runtime, email: str, token: str) -> None:
        from nurture.lifecycle.accounts import LINK_TTL

        hours = int(LINK_TTL.total_seconds() // 3600)
        cli.console.print(
            f"Send {email} this link to choose a password (works once, for {hours} h):",
            soft_wrap=True,
        )
        typer.echo(_link(runtime, token))

    @users_app.command("add")
    def users_add(
        email: Email,
        name: Annotated[str, typer.Option(help="The person's name, shown in the inbox.")],
        role: Role = "sales",
        timezone: Annotated[
            str | None,
            typer.Option(help="IANA timezone (default: sending.default_timezone)."),
        ] = None,
        language: Annotated[str, typer.Option(help="Language code.")] = "fr",
        project: ProjectDir = None,
    ) -> None:
        """Create an account and print its one-time link to choose a password."""
        import nurture.clock as clock
        from nurture.lifecycle import accounts

        with cli.reported():
            runtime = cli.open_runtime(project)
            zone = timezone or runtime.project.config.sending.default_timezone
            now = clock.now()
            with runtime.sessions.begin() as session:
                account = accounts.add(session, email, name, role, zone, now, language)
                token = accounts.issue_link(session, account, now)
                address = account.email
            cli.console.print(f"[green]✓[/green] account {address} ({role}) created")
            _print_link(runtime, address, token)

    @users_app.command("add-owners")
    def users_add_owners(project: ProjectDir = None) -> None:
        """An account for everyone `handoff` names in nurture.yaml that has none: the
        assignees (round_robin, rules) as sales, `sla.escalate_to` as lead."""
        import nurture.clock as clock
        from nurture.lifecycle import accounts
        from nurture.store.accounts import account_by_email

        with cli.reported():
            runtime = cli.open_runtime(project)
            config = runtime.project.config
            owners = accounts.owners_named(config)
            if not owners:
                cli.fail("nurture.yaml names no owner (handoff.assign, handoff.sla.escalate_to)")
            now = clock.now()
            created: list[tuple[str, str]] = []
            with runtime.sessions.begin() as session:
                for email, role in owners.items():
                    if account_by_email(session, accounts.account_email(email)) is not None:
                        cli.console.print(f"  {email}: has an account")
                        continue
                    account = accounts.add(
                        session,
                        email,
                        accounts.name_from_email(email),
                        role,
                        config.sending.default_timezone,
                        now,
                    )
                    created.append((account.email, accounts.issue_link(session, account, now)))
            for email, token in created:
                cli.console.print(f"[green]✓[/green] {email} ({owners[email]}) created")
                _print_link(runtime, email, token)
            if not created:
                cli.console.print("every owner has an account")

    @users_app.command("list")
    def users_list(project: ProjectDir = None) -> None:
        """Every account: role, timezone, and whether it can sign in."""
        from nurture.lifecycle.accounts import throttle_key
        from nurture.store.accounts import all_accounts, throttle

        with cli.reported():
            runtime = cli.open_runtime(project)
            table = Table(box=None, pad_edge=False)
            for column in ("email", "name", "role", "timezone", "state"):
                table.add_column(column)
            with runtime.sessions() as session:
                for account in all_accounts(session):
                    locked = throttle(session, throttle_key(account.email))
                    state = (
                        "disabled"
                        if account.disabled_at
                        else "locked (users reset or unlock)"
                        if locked is not None and locked.locked_at
                        else "no password yet"
                        if not account.password_hash
                        else "active"
                    )
                    table.add_row(
                        account.email, account.name, account.role, account.timezone, state
                    )
            cli.console.print(table if table.row_count else "no accounts (nurture users add)")

    @users_app.command("update")
    def users_update(
        email: Email,
        name: Annotated[str | None, typer.Option(help="A new name.")] = None,
        role: Annotated[str | None, typer.Option(help="sales, lead or admin.")] = None,
        timezone: Annotated[str | None, typer.Option(help="IANA timezone.")] = None,
        language: Annotated[str | None, typer.Option(help="Language code.")] = None,
        project: ProjectDir = None,
    ) -> None:
        """Change an account's name, role, timezone or language."""
        from nurture.lifecycle import accounts

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                accounts.update(
                    session, email, name=name, role=role, timezone=timezone, language=language
                )
            cli.console.print(f"[green]✓[/green] {email} updated")

    @users_app.command("reset")
    def users_reset(email: Email, project: ProjectDir = None) -> None:
        """A way back in: lifts a lockout and prints a new one-time link to choose a
        password (the older links stop working; setting the password ends every session)."""
        import nurture.clock as clock
        from nurture.lifecycle import accounts

        with cli.reported():
            runtime = cli.open_runtime(project)
            now = clock.now()
            with runtime.sessions.begin() as session:
                account = accounts.get(session, email)
                accounts.unlock(session, account.email)
                token = accounts.issue_link(session, account, now)
                address = account.email
            cli.console.print(f"[green]✓[/green] {address}: any lockout lifted, a new link issued")
            _print_link(runtime, address, token)

    @users_app.command("unlock")
    def users_unlock(email: Email, project: ProjectDir = None) -> None:
        """Lift a lockout after too many wrong passwords (the password stays)."""
        from nurture.lifecycle import accounts

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                accounts.unlock(session, accounts.get(session, email).email)
            cli.console.print(f"[green]✓[/green] {email} unlocked")

    @users_app.command("disable")
    def users_disable(email: Email, project: ProjectDir = None) -> None:
        """No more sign-in: the account's sessions end now; its history stays."""
        import nurture.clock as clock
        from nurture.lifecycle import accounts

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                accounts.disable(session, email, clock.now())
            cli.console.print(f"[green]✓[/green] {email} disabled; its sessions are ended")

    @users_app.command("enable")
    def users_enable(email: Email, project: ProjectDir = None) -> None:
        """Sign-in allowed again (with the same password; `reset` for a new one)."""
        from nurture.lifecycle import accounts

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                accounts.enable(session, email)
            cli.console.print(f"[green]✓[/green] {email} enabled")
