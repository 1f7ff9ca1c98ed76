"""How much a poll re-reads before its cursor: the whole overlap at the live edge, nothing behind
a cursor set well behind it (a backlog being drained)."""

from datetime import UTC, datetime, timedelta

from oms.services.ingest import overlap_needed

NOW = datetime(2026, 11, 11, 0, 10, tzinfo=UTC)
LAG, OVERLAP = timedelta(minutes=3), timedelta(minutes=5)


def test_a_cursor_at_the_live_edge_re_reads_the_whole_overlap():
    # GIVEN a cursor set by a window that ended lag before the moment it was planned
    assert overlap_needed(NOW - LAG, NOW, LAG, OVERLAP) == OVERLAP


def test_a_cursor_set_well_behind_the_live_edge_needs_no_overlap():
    # GIVEN a backlog being drained: the cursor's window ended hours before it was read
    assert overlap_needed(NOW - timedelta(hours=6), NOW, LAG, OVERLAP) == timedelta(0)


def test_a_cursor_in_between_re_reads_only_what_could_have_been_indexed_late():
    # read at NOW: orders updated before NOW - 8 min were visible then
    assert overlap_needed(NOW - timedelta(minutes=6), NOW, LAG, OVERLAP) == timedelta(minutes=2)


def test_without_the_moment_it_was_read_the_whole_overlap_is_re_read():
    assert overlap_needed(NOW - timedelta(hours=6), None, LAG, OVERLAP) == OVERLAP
    assert overlap_needed(None, NOW, LAG, OVERLAP) == OVERLAP
