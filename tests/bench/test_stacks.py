# -*- test-case-name: tests.bench.test_stacks -*-
"""
Tests of relaybench.stacks: own and inclusive time from py-spy's raw output.
"""

from twisted.trial.unittest import SynchronousTestCase

from relaybench.stacks import NO_FRAME, parse_raw, summary

RAW = """\
<module> (twist:1);run (base.py:10);doPoll (reactor.py:32);doRead (lean.py:5) 6
<module> (twist:1);run (base.py:10);doPoll (reactor.py:32);accept (socket.py:287) 3

<module> (twist:1);run (base.py:10);walk (tree.py:1);walk (tree.py:1);walk (tree.py:1) 1
"""


class ParseRawTests(SynchronousTestCase):
    """Counting samples per function."""

    def test_own_time_is_the_innermost_frame(self) -> None:
        """A function's own samples are those where it is last on the stack."""
        profile = parse_raw(RAW.splitlines())
        self.assertEqual(profile.samples, 10)
        self.assertEqual(profile.own["doRead (lean.py:5)"], 6)
        self.assertEqual(profile.own["accept (socket.py:287)"], 3)
        self.assertEqual(profile.own["doPoll (reactor.py:32)"], 0)

    def test_inclusive_time_counts_a_sample_once(self) -> None:
        """A function anywhere on the stack counts once per sample, however deep it
        recurses."""
        profile = parse_raw(RAW.splitlines())
        self.assertEqual(profile.inclusive["doPoll (reactor.py:32)"], 9)
        self.assertEqual(profile.inclusive["walk (tree.py:1)"], 1)
        self.assertEqual(profile.inclusive["<module> (twist:1)"], 10)

    def test_frames_may_contain_spaces(self) -> None:
        """Only the last space separates the count, so frames keep theirs."""
        profile = parse_raw(["make_lean.<locals>.lean_read (penbal/relay/leanport.py:78) 4"])
        self.assertEqual(profile.own["make_lean.<locals>.lean_read (penbal/relay/leanport.py:78)"],
                         4)

    def test_empty_stack(self) -> None:
        """A sample with no Python frame (py-spy writes its count alone) is counted as such,
        not refused."""
        profile = parse_raw(["a (x.py:1) 2", " 3"])
        self.assertEqual(profile.samples, 5)
        self.assertEqual(profile.own[NO_FRAME], 3)

    def test_malformed_line(self) -> None:
        """A line without a count is an error naming its number."""
        with self.assertRaises(ValueError) as caught:
            parse_raw(["a (x.py:1) 2", "b (y.py:2)"])
        self.assertIn("line 2", str(caught.exception))


class SummaryTests(SynchronousTestCase):
    """The printed top lists."""

    def test_lists_in_order_with_percentages(self) -> None:
        """Own time, largest first; inclusive time without the frames every sample has."""
        text = summary(parse_raw(RAW.splitlines()), 2)
        own, inclusive = text.split("inclusive time")
        self.assertIn("samples: 10", own)
        self.assertLess(own.index("60.0 %  doRead (lean.py:5)"),
                        own.index("30.0 %  accept (socket.py:287)"))
        self.assertNotIn("<module>", inclusive)
        self.assertIn("90.0 %  doPoll (reactor.py:32)", inclusive)
        self.assertIn("2 frames found in every sample left out", inclusive)
