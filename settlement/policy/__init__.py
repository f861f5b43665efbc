"""Policy rule files: their format, the loader, and resolution of one claim's scheme.

``load_rules(directory)`` reads a rules directory into a ``RuleSet``. ``RuleSet.policy``
and ``RuleSet.policy_for`` pick the version in force on a date, and ``Policy.resolve``
turns it into the ``SchemeParams`` that the kernel and the reference model settle from.
"""

from settlement.policy.compile import FUND_LAYERS, MAX_BANDS, compile_policy
from settlement.policy.groups import age_on, person_group
from settlement.policy.loader import RuleSet, load_rules, read_policy_file
from settlement.policy.model import Policy, Scheme
from settlement.policy.schema import YEAR_RULES, PolicyFile

__all__ = [
    "FUND_LAYERS",
    "MAX_BANDS",
    "Policy",
    "PolicyFile",
    "RuleSet",
    "Scheme",
    "YEAR_RULES",
    "age_on",
    "compile_policy",
    "load_rules",
    "person_group",
    "read_policy_file",
]
