"""Command-line overrides checked against the config before Hydra runs the command.

Hydra answers a misspelt key (`model.hiden=3`) with a five-line message ending in a hint to
type `+model.hiden=3`, which Hydra then accepts: the key is appended, handed to the model's
constructor and ends, after the data is prepared, in a TypeError traceback. Both are one line
here, naming the nearest key that exists:

    duorec.train: error: model.hiden is not a setting of model (did you mean model.hidden?)

How: the config is composed once with the user's overrides (Hydra's compose API, about 0.2 s,
before the command composes it again for real). An override Hydra refuses is explained in one
line; a key *added* with `+` under a node that builds an object (`_target_`) must be a
parameter that object takes; one added under a plain settings section (`eval`, `data.split`)
must already exist there. Adding a whole new node (`+callbacks.stop._target_=...`) or a
top-level key (`+sweep_group=lr`) stays allowed: that is what `+` is for.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from duorec.errors import UsageError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def check_overrides(config_name: str, argv: Sequence[str]) -> None:
    """Raise UsageError (one line) for an override of `config_name` that names no setting.

    `argv` is read by Hydra's own argument parser, so its flags and their values (`--cfg job`,
    `--info config`, `-cn NAME`) are never taken for overrides. A command pointed at other
    config folders (`--config-path`, `--config-dir`) is left to Hydra.
    """
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    flags = get_args_parser().parse_args(list(argv))
    if flags.config_path or flags.config_dir:
        return
    config_name = flags.config_name or config_name
    args = [a for a in flags.overrides if not a.lstrip("+~").startswith("hydra.")]
    if not args:
        return
    parser = OverridesParser.create()
    parsed = []
    for arg in args:
        try:
            parsed.extend(parser.parse_overrides([arg]))
        except HydraException as err:
            raise UsageError(f"{arg}: cannot be read as an override ({_first_line(err)})") from None
    single = [_first_value(o) for o in parsed]
    _compose(config_name, single)  # Hydra's own refusals, explained in one line
    for override, line in zip(parsed, single, strict=True):
        if override.is_add() and not _is_group(override.key_or_group):
            _check_added_key(config_name, override.key_or_group, line, single)


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    """The config as the command will compose it, or a one-line UsageError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise UsageError(_explain(config_name, err, overrides)) from None
    finally:
        GlobalHydra.instance().clear()


def _explain(config_name: str, err: Exception, overrides: list[str]) -> str:
    """One line for a composition Hydra refused: unknown key, unknown option, bad value."""
    text = str(err)
    key = re.search(r"Could not (?:override|append to|delete) '([^']+)'", text)
    if key is None:
        key = re.search(r"Could not (?:override|append to|delete) ([\w.]+)", text)
    if key is not None:
        name = key.group(1)
        rest = [o for o in overrides if _override_key(o) != name]
        known = _all_keys(_compose_plain(config_name, rest))
        if name in known:  # the key exists: the value was wrong (e.g. a list for a number)
            why = text.split("\n")[-1].strip() or _first_line(err)
            return f"{name}: {why}"
        return _unknown(name, known)
    option = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if option is not None:
        group, name = option.groups()
        choices = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        near = difflib.get_close_matches(name, choices, n=1)
        hint = f" (did you mean {group}={near[0]}?)" if near else ""
        return f"{group}={name} is not an option of {group}: choose one of " + (
            ", ".join(choices) + hint
        )
    return _first_line(err)


def _check_added_key(config_name: str, key: str, line: str, overrides: list[str]) -> None:
    """A `+parent.name=value` must name a parameter of what `parent` builds."""
    parent_key, _, name = key.rpartition(".")
    if not parent_key or name.startswith("_"):
        return  # a new top-level key (sweep_group), or Hydra's own (_target_, _partial_)
    # composed without every key this command line adds under the same parent: a node that
    # exists only through them (+callbacks.stop._target_=..., +callbacks.stop.epochs=2) is new
    rest = [o for o in overrides if not (o.startswith("+") and _override_key(o).startswith(
        f"{parent_key}."))]
    cfg = _compose_plain(config_name, rest)
    parent = OmegaConf.select(cfg, parent_key, default=None)
    if not isinstance(parent, DictConfig) or name in parent:
        return  # a whole new node, or a key that was there already (`+` = set it)
    target = parent.get("_target_")
    if target is None:
        if any(isinstance(v, DictConfig) and "_target_" in v for v in parent.values()):
            return  # a container of objects (callbacks): `+` adds one more
        known = [f"{parent_key}.{k}" for k in parent]
        raise UsageError(_unknown(key, known, f"+{key}"))
    accepted = _parameters(str(target))
    if accepted is None or name in accepted:
        return
    known = [f"{parent_key}.{k}" for k in sorted(set(accepted) | set(parent.keys()))]
    raise UsageError(_unknown(key, known, f"+{key}"))


def _unknown(name: str, known: Iterable[str], shown: str | None = None) -> str:
    parent, _, leaf = name.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    near = [siblings[m] for m in difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)]
    where = f" of {parent}" if parent else ""
    hint = f" (did you mean {near[0]}?)" if near else ""
    return f"{shown or name} is not a setting{where}{hint}"


def _parameters(target: str) -> set[str] | None:
    """Keyword names `target` accepts, or None when it takes any (**kwargs all the way)."""
    module_name, _, attr = target.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        owner, _, method = module_name.rpartition(".")
        try:  # a classmethod: module.Class.method
            obj = getattr(getattr(importlib.import_module(owner), method), attr)
        except (ImportError, AttributeError):
            return None
    names: set[str] = set()
    callables = [obj]
    declared = None
    if inspect.ismethod(obj) and inspect.isclass(obj.__self__):
        callables.append(obj.__self__.__init__)  # from_dataset(**kwargs) -> cls(**kwargs)
        declared = getattr(obj.__self__, "setting_keys", None)
    for fn in callables:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind is not p.VAR_KEYWORD}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
        if declared is not None:  # a class whose **settings takes exactly these (DuoModule)
            return names | set(declared)
    return None  # every callable in the chain forwards **kwargs: anything may be taken


def _compose_plain(config_name: str, overrides: list[str]) -> DictConfig:
    try:
        return _compose(config_name, overrides)
    except UsageError:
        return _compose(config_name, [])


def _all_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key in cfg.keys():
        full = f"{prefix}{key}"
        keys.append(full)
        value = cfg._get_node(key)
        if isinstance(value, DictConfig):
            keys.extend(_all_keys(value, f"{full}."))
    return keys


def _first_value(override: Any) -> str:
    """A sweep (`lr=1e-3,3e-4`) as its first value: every value composes the same keys."""
    if not override.is_sweep_override():
        return override.input_line
    first = next(iter(override.sweep_string_iterator()))
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    return f"{prefix}{override.get_key_element()}={first}"


def _override_key(line: str) -> str:
    return line.lstrip("+~").split("=", 1)[0].split("@", 1)[0]


def _is_group(key: str) -> bool:
    return (CONF_DIR / key.replace(".", "/")).is_dir()


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def run_checked(main: Any, config_name: str, prog: str) -> None:
    """Run a Hydra entry point after its command-line overrides passed `check_overrides`."""
    import sys

    try:
        check_overrides(config_name, sys.argv[1:])
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(1)
    main()
