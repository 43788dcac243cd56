"""The build plan: where every file of a build lives (`layout`), every seed (`seeds`), the stages and their
manifest (`stages`, `runner`), and the one fit sequence — flows → collocation → fields — that the nominal
build (member 0) and every ensemble member run (`fit`).

(Named `plan`, not `build`: `dpotcube.build` is the public function that runs a recipe.)
"""

from .fit import fit_stages
from .layout import BuildLayout
from .runner import Manifest, Runner, checksum
from .seeds import flow_seeds, member_seed, stage_seed
from .stages import Stage

__all__ = ["BuildLayout", "Manifest", "Runner", "Stage", "checksum", "fit_stages", "flow_seeds", "member_seed",
           "stage_seed"]
