"""Which API tests run on PostgreSQL + ClickHouse (the `pgch` engine of tests/conftest.py), and which not, and why.

Every module of tests/api runs on SQLite and on pgch, except:

- SQLITE_ONLY_MODULES: modules about SQLite itself, modules whose tests set up or check rows by opening
  me_meta.db / me_analytics.db directly (not yet ported to tests/stores.py);
- SQLITE_ONLY_TESTS: single tests of that kind in modules that otherwise run on both.

XFAIL lists the tests that fail on pgch because ClickHouse analytics lacks the operation (a strict xfail:
when the engine learns it, the test passes and the entry must go).
"""

from __future__ import annotations

from typing import Final

_FILES: Final = "sets up or checks its rows by opening the SQLite files directly (not ported to tests/stores.py)"
_SITE_HITS: Final = "checks SQLite's site_hits table; ClickHouse counts the day's hits from its rows (test_quota.py)"

SQLITE_ONLY_MODULES: Final[dict[str, str]] = {
    "test_auth_passwords.py": _FILES,
    "test_events_writer.py": "unit tests of the group-commit Batcher on a SQLite door; no server runs",
    "test_events_ping_dates.py": "pure parsing of the ping's dates; no store is involved",
    "test_hit_size.py": "measures the bytes a hit takes in SQLite's file",
    "test_settings.py": _FILES,
    "test_stats_csv.py": _FILES,
    "test_stats_refresh.py": "SQLite's rollup refresh (AnalyticsStore.maintain); ClickHouse needs none",
    "test_stats_time.py": _FILES,
    "test_websites_overview.py": _FILES,
    # Time budget (tests/pgch.py's run must stay near 5 minutes on 2 cores): long property runs whose
    # store calls the other modules cover on pgch.
    "test_auth_fuzz.py": "time budget: the fuzzed requests reach the same store calls as test_auth.py",
    "test_events_fuzz.py": "time budget: the fuzzed hits reach the same store calls as test_events.py",
}

SQLITE_ONLY_TESTS: Final[dict[str, str]] = {
    "test_auth.py::test_full_cycle_login_use_logout_then_401": _FILES,
    "test_auth.py::test_cookie_attributes_and_server_side_storage": _FILES,
    "test_auth.py::test_expired_session_is_refused_and_deleted": _FILES,
    "test_auth.py::test_startup_purges_expired_sessions": _FILES,
    "test_drops.py::test_every_reason_is_counted_per_site_and_shown_to_the_sites_owner": _FILES,
    "test_drops.py::test_days_are_newest_first_and_the_period_is_the_last_30_days_by_default": _FILES,
    "test_events.py::test_a_database_failure_is_500": "breaks SQLite's file to make the write fail",
    "test_export.py::test_pages_give_every_row_once_in_order": (
        "SQLite's pager itself; tests/clickhouse/test_transfer.py has ClickHouse's"
    ),
    "test_foreign.py::test_umami_website_id_alias": _FILES,
    "test_foreign.py::test_foreign_hits_count_against_the_sites_daily_quota": _FILES,
    "test_notes.py::test_site_and_role_checks": _FILES,
    "test_sitesettings.py::test_a_change_written_by_another_process_is_followed": _FILES,
    "test_sitesettings.py::test_site_and_role_checks": _FILES,
    "test_sitesettings.py::test_demo_mode_refuses_changes": _FILES,
    "test_users.py::test_renaming_to_a_taken_username_is_409": _FILES,
    "test_users.py::test_delete_removes_the_user_sites_views_events_and_session": _FILES,
    "test_users.py::test_deleting_one_user_leaves_the_others": _FILES,
    "test_users.py::test_deleting_the_account_needs_the_current_password": _FILES,
    "test_users.py::test_accounts_from_before_the_flag_are_checked_once_at_start": _FILES,
    "test_users.py::test_the_default_password_must_be_changed_and_cannot_be_chosen_again": _FILES,
    "test_users.py::test_a_login_with_the_default_password_sets_the_flag_without_hashing_again": _FILES,
    "test_websites.py::test_a_site_the_caller_may_not_read_is_401_on_get_and_patch_and_404_on_delete": _FILES,
    "test_websites.py::test_rename_moves_views_and_events": _FILES,
    "test_websites.py::test_delete_removes_views_and_events": _FILES,
    "test_websites.py::test_summary_counts_unique_visitors_of_the_last_24_hours": _FILES,
    "test_websites.py::test_hits_racing_a_delete_leave_no_rows": _FILES,
    "test_quota.py::test_past_the_quota_hits_are_204_counted_as_quota_and_not_stored": _SITE_HITS,
    "test_quota.py::test_the_days_count_moves_and_goes_with_its_site": _SITE_HITS,
    "test_keys.py::test_expiry": _FILES,
    "test_keys.py::test_only_the_hash_is_stored": _FILES,
    "test_members.py::test_the_last_admin_stays": _FILES,
    "test_members.py::test_an_upstream_database_opens_with_every_user_an_admin": "opens an upstream me_meta.db",
    "test_shares.py::test_an_expired_share_is_refused": _FILES,
}

XFAIL: Final[dict[str, str]] = {}
