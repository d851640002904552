"""Deprecated location of :mod:`andersonn_lab.solvers.checks`, kept for older imports."""

from .checks import STOP_MODES, check_beta, check_int, check_real, check_stop_mode

__all__ = ["STOP_MODES", "check_beta", "check_int", "check_real", "check_stop_mode"]
