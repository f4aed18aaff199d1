"""Versions a result carries: the installed package's and the model's.

``MODEL_VERSION`` names the model's behaviour: it changes, with an entry in
``docs/changes.md`` and new pinned digests (``tests/test_pinned_results.py``), whenever a
change moves the results of an unchanged experiment. A refactoring that moves nothing
keeps it.
"""

from __future__ import annotations

#: Model 1: the model of hhsim 0.1.0 to 0.3.0. Model 2: winter, hazards that come and go,
#: dwellings with attributes (issue 18; docs/changes.md). Model 3: households' children
#: (issue 18). Model 4: the chains hold England's cross-section as people age (issue 16).
#: Model 5: service-use rate ratios by health state from the evidence (issue 16). Model 6:
#: the deprivation gradient of health changes with age and holds as people age (issue 16).
#: Model 7: emergency admissions by cause, and planned care and prescribing (issue 16).
#: Model 8: a cross-section smooth by single year of age, and transitions fitted to hold it
#: at each person's age (issue 16: drift). Model 9: common mental disorder as APMS 2023/4
#: found it; planned care and prescribing concentrated by health state (issue 16). Model 10:
#: transitions fitted month by month with children turning 16 (drift at 16-24), and sourced
#: values for the winter excess of admissions, conditions among social renters, the health
#: transitions' condition ratios and children's utility (issue 16). Model 11: the first
#: shipped posterior of the baseline's calibration, derived odds ratios of worse health with
#: a condition, care need and mental disorder, and the rate ratios that hold them fitted
#: (issue 16). Model 12: mortality's gradient by deprivation decile differs by sex, fitted to
#: life expectancy in deciles 1 and 10 (issue 16). Model 13: the spread of emergency stays
#: fitted to the share of beds held by patients in 21 days or more (issue 16). Model 14:
#: adults' emergency stays fitted jointly, zero-day stays, a bed day costed on the National
#: Cost Collection (issue 16). Model 15: the emergency admission rate by age derived from
#: HES, and community nursing's rate ratios sourced (issue 16).
MODEL_VERSION = "15"

#: Default-model parameters a model version retired: name -> what replaced it (the one line
#: an old experiment file that sets one gets).
RETIRED_PARAMETERS: dict[str, str] = {
    "mortality.rr.excess_cold": "model 2 replaced this all-year rate ratio by a winter excess: "
                                "set parameters.cold_winter_ratio (docs/changes.md)",
    "hospital.admissions.emergency.rr.excess_cold": "model 2 placed the cold-home ratio in "
                                                    "December-March: set "
                                                    "parameters.cold_home_admissions_ratio "
                                                    "(docs/changes.md)",
    "hospital.admissions.emergency.rr.damp": "model 7 moved damp onto respiratory admissions: set "
                                             "hospital.admissions.emergency.causes.respiratory.rr.damp "
                                             "(docs/changes.md)",
    "hospital.admissions.emergency.rr.falls": "model 7 moved the falls hazard onto fall injuries: set "
                                              "hospital.admissions.emergency.causes.falls.rr.falls "
                                              "(docs/changes.md)",
    "hospital.admissions.emergency.rr.calendar_month.all": "model 7 gave each cause of emergency "
                                                           "admissions its winter shape: set "
                                                           "parameters.respiratory_winter_ratio or "
                                                           "parameters.admission_winter_index "
                                                           "(docs/changes.md)",
    "hospital.admissions.emergency.rr.calendar_month.excess_cold": "model 7 placed the cold-home ratio "
                                                                   "by cause: set parameters."
                                                                   "cold_home_respiratory_ratio, "
                                                                   "cold_home_circulatory_ratio or "
                                                                   "cold_home_admissions_ratio "
                                                                   "(docs/changes.md)",
}


def package_version() -> str:
    """The installed hhsim's version ('unknown' when it is not installed)."""
    from importlib import metadata  # about 70 modules: not for a plain 'import hhsim'

    try:
        return metadata.version("hhsim")
    except metadata.PackageNotFoundError:
        return "unknown"
