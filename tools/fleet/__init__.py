"""A fleet of the real firmware against a Central System: `python -m tools.fleet --help`.

run.py runs chargers in one loop; cli.py is the command line (and spreads a fleet over
processes); profile.py reads behaviour profiles (profiles/*.json); stats.py counts and times.
"""
