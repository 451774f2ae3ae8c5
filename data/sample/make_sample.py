"""Writes data/sample/census.csv: the demo's bundled sample data.

    python3 data/sample/make_sample.py

A small, deterministic, census-like table (in the spirit of the UCI "adult"
data the Estimator tutorials used): numeric, categorical and list-valued
columns, missing values, quoting and unicode, and a label that depends on the
features so a model can learn it. Three rows are broken on purpose (a
non-numeric age, a missing label, a row with too few cells) so the demo shows
the dead-letter output. Standard library only; the output is committed.
"""

from __future__ import annotations

import csv
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = 3000

WORKCLASS = ["Private", "Self-emp", "Federal-gov", "State-gov", "Local-gov", "Without-pay"]
EDUCATION = ["HS-grad", "Some-college", "Bachelors", "Masters", "Doctorate", "11th", "Assoc"]
OCCUPATION = [
    "Tech-support", "Craft-repair", "Sales", "Exec-managerial", "Prof-specialty",
    "Adm-clerical", "Machine-op", "Transport", "Farming-fishing", "Protective-serv",
]
COUNTRY = ["United-States", "Mexico", "Philippines", "Germany", "Canada", "India", "España",
           "Côte d'Ivoire", "Viet Nam"]
HOBBIES = ["chess", "hiking", "music", "cooking", "football", "reading", "gardening"]


def main() -> None:
    rng = random.Random(20261127)
    path = os.path.join(HERE, "census.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["age", "workclass", "education", "education_num", "occupation",
                    "hours_per_week", "capital_gain", "native_country", "hobbies", "label"])
        for i in range(ROWS):
            age = rng.randint(17, 80)
            edu = rng.randrange(len(EDUCATION))
            edu_num = [9, 10, 13, 14, 16, 7, 11][edu]
            occ = rng.choice(OCCUPATION)
            hours = max(1, min(99, int(rng.gauss(40, 12))))
            gain = 0 if rng.random() < 0.9 else int(rng.expovariate(1 / 8000))
            country = rng.choice(COUNTRY) if rng.random() < 0.3 else COUNTRY[0]
            hobbies = "|".join(sorted(rng.sample(HOBBIES, rng.randint(0, 3))))
            score = (
                0.06 * (age - 40) - 0.0015 * (age - 45) ** 2 + 0.45 * (edu_num - 10)
                + 0.05 * (hours - 40) + (0.8 if occ in ("Exec-managerial", "Prof-specialty")
                                          else 0.0)
                + (1.5 if gain > 5000 else 0.0) - 1.2
            )
            label = int(rng.random() < 1 / (1 + math.exp(-score)))
            workclass = rng.choice(WORKCLASS) if rng.random() > 0.03 else ""  # missing
            row = [age, workclass, EDUCATION[edu], edu_num, occ, hours, gain, country,
                   hobbies, label]
            if i == 111:
                row[0] = "forty"  # not a number: dead-lettered
            if i == 222:
                row[-1] = ""  # the label is required: dead-lettered
            if i == 333:
                row = row[:4]  # too few cells: dead-lettered
            w.writerow(row)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
