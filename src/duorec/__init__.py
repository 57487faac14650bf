"""duorec: recommend movies to two people who watch together."""

import os

# Before anything imports torch: OpenMP reads it once, at load (see duorec.threads for why)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from omegaconf import OmegaConf

from duorec import quiet
from duorec.runs import resume_dir

__version__ = "0.1.0"

# `${cwd:}` in conf/paths: Hydra's own `${hydra:runtime.cwd}` is not set yet when a multirun
# resolves its sweep directory, so the working directory comes from here instead.
OmegaConf.register_new_resolver("cwd", os.getcwd, replace=True)
# `${pid:}` in conf/hydra: runs started in the same microsecond still get their own folder
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
# `${folder_name:${data.movielens_dir}}` in conf/data/movielens.yaml: a data set is named after
# its folder, so runs on ml-100k are not filed under another release's name
OmegaConf.register_new_resolver(
    "folder_name", lambda path: os.path.basename(os.path.normpath(str(path))), replace=True
)
# `${resume_dir:...}` in conf/hydra/train.yaml: a resumed run continues in its own folder
OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)
quiet.install()
