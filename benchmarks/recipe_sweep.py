"""Which short training recipe learns from scratch? Validation (and test) `any` AUC against images seen.

    python benchmarks/recipe_sweep.py --studies 40 --archs resnet50 --budgets 3000     # one CPU-sized probe
    python benchmarks/recipe_sweep.py --studies 120 --archs densenet121 --recipes cpu \
        --sizes 64,128 --seeds 0,1 --budgets 1800,3600 --every 1800 --predictions preds   # size, length, seed
    python benchmarks/recipe_sweep.py --studies 670 --matrix 256 --archs densenet121 --recipes cpu \
        --sizes 64,80 --crops 0,1 --budgets 1800 --every 1800      # the head crop and the input size
    KERAS_BACKEND=jax python benchmarks/recipe_sweep.py --studies 120 --parallel 1     # on a GPU, one at a time
    python benchmarks/recipe_sweep.py --profile cpu --run densenet121-three_window-optimised \
        --levers "" "mask_weight=0 score_from=head" "weights=masks pretrain_images=2400" "epoch_images=2400"
                                   # the levers on the book's own cohort, split and runs (kept under data/runs)

With ``--profile``, each lever is a set of ``KEY=VALUE`` changes to that profile's run settings (an empty string
is the profile as it is); every run is trained as the book trains it (``ichlib.levers.measure_levers``: the
book's cohort, split and caches; finished runs and backbones are kept, so the book reuses what the sweep
trained). One JSON line per lever: validation `any` AUC, plain and level-matched (each positive against the
negatives of its own tenth of the series), the pointing game of the `any` Grad-CAM and of the mask head on
``--slices`` validation bleeds, training and pretraining seconds; then the density and random pointers.

The `cpu` profile can afford about 1,800 training images per model (60-100 s at 64 px on 2 cores). This script
trains the chosen architectures under a grid of recipes (learning rate, batch-normalisation momentum, share of
positive images per epoch), input sizes, training seeds (initialisation and sampling; the split stays the
cohort's) and budgets (training images per run), on phantom cohorts of the given sizes. Every `--every` images
(one "epoch" of freshly drawn images) it predicts the validation and test patients. Recipes are to be chosen on
the validation column; test is printed to show how far the two disagree on a split of a few patients. Prints
one JSON line per evaluation (and writes them to `--out`); with `--predictions DIR` each run's final
validation and test probabilities are saved there, so ensembles of the runs can be scored afterwards.
`--parallel N` runs N jobs at once in their own processes: on CPU cores. On one GPU under JAX eight processes
at once finished nothing in six minutes (each compiles its own graphs), so keep 1 there.
A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time

import numpy as np

RECIPES = {
    "paper": dict(learning_rate=5e-4, bn_momentum=0.99, positive_fraction=0.0),
    "bn0.9": dict(learning_rate=5e-4, bn_momentum=0.9, positive_fraction=0.0),
    "bn0.9-lr1e-3": dict(learning_rate=1e-3, bn_momentum=0.9, positive_fraction=0.0),
    "bn0.9-pos0.5": dict(learning_rate=5e-4, bn_momentum=0.9, positive_fraction=0.5),
    "bn0.9-lr1e-3-pos0.5": dict(learning_rate=1e-3, bn_momentum=0.9, positive_fraction=0.5),
    "bn0.9-lr2e-3-pos0.5": dict(learning_rate=2e-3, bn_momentum=0.9, positive_fraction=0.5),
    "bn0.9-lr1e-3-pos0.5-cosine": dict(learning_rate=1e-3, bn_momentum=0.9, positive_fraction=0.5,
                                       lr_schedule="cosine"),
    "bn0.9-lr2e-3-pos0.5-cosine": dict(learning_rate=2e-3, bn_momentum=0.9, positive_fraction=0.5,
                                       lr_schedule="cosine"),
    "bn0.9-lr2e-3-pos0.3-cosine": dict(learning_rate=2e-3, bn_momentum=0.9, positive_fraction=0.3,
                                       lr_schedule="cosine"),
}


def profile_recipe(name: str) -> dict:
    """The recipe of a profile in profiles.yml (so "cpu" here is always what the book trains)."""
    from ichlib.book import project_root
    from ichlib.parameters import load_profiles

    profile = load_profiles(project_root() / "profiles.yml")[name]
    return {k: profile[k] for k in ("learning_rate", "bn_momentum", "positive_fraction", "lr_schedule")}


RECIPES["cpu"] = profile_recipe("cpu")


def prepare(folder: str, studies: int, matrix: int, size: int, seed: int, workers: int, crop: bool = False) -> dict:
    from ichlib.cache import build_cache
    from ichlib.phantom import make_cohort
    from ichlib.rsna import index_dicoms, read_labels
    from ichlib.split import split_by_patient

    if not os.path.exists(f"{folder}/cohort/manifest.json"):  # one cohort, a cache per size
        make_cohort(f"{folder}/cohort", studies, seed=seed, matrix=matrix, workers=workers, progress=False)
    index, _ = index_dicoms(f"{folder}/cohort/stage_2_train", workers=workers, progress=False)
    labels = read_labels(f"{folder}/cohort/stage_2_train.csv")
    tag = f"{size}{'_crop' if crop else ''}"
    cache = build_cache(index, f"{folder}/cache{tag}", size=size, labels=labels, workers=workers, progress=False,
                        crop=crop)
    split = split_by_patient(index, seed, labels).reindex(cache.ids).to_numpy()
    np.savez(f"{folder}/data{tag}.npz", images=np.asarray(cache.images), labels=cache.labels, split=split)
    return {"studies": studies, "size": size, "crop": crop, "images": int(len(split)),
            **{f"{name} patients": int(index.loc[np.asarray(cache.ids)[split == name], "patient"].nunique())
               for name in ("train", "val", "test")}}


def one_run(job: dict) -> list[dict]:
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from sklearn.metrics import roc_auc_score

    from ichlib.losses import WeightedBCE
    from ichlib.models import build_model
    from ichlib.runs import RunSpec
    from ichlib.batches import batches_class
    from ichlib.devices import set_determinism
    from ichlib.train import learning_rate

    data = np.load(job["data"], allow_pickle=True)
    images, labels, split = data["images"], data["labels"], data["split"]
    rows = {name: np.flatnonzero(split == name) for name in ("train", "val", "test")}
    recipe = RECIPES[job["recipe"]]
    set_determinism(job["seed"])
    every = min(job["every"], job["budget"])
    # one "epoch" per evaluation, each a fresh draw of `every` images: Keras under JAX cannot predict mid-epoch
    batches = batches_class()(images, labels, rows["train"], job["batch"], True, job["seed"],
                               positive_fraction=recipe["positive_fraction"], epoch_size=every)
    model = build_model(job["arch"], images.shape[1], bn_momentum=recipe["bn_momentum"], seed=job["seed"])
    spec = RunSpec(job["arch"], **recipe)
    steps = len(batches)
    epochs = max(1, int(np.ceil(job["budget"] / (steps * job["batch"]))))
    model.compile(keras.optimizers.Adam(learning_rate(spec, steps * epochs)), WeightedBCE())
    results, start = [], time.perf_counter()

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {k: job[k] for k in ("arch", "recipe", "studies", "size", "crop", "batch", "seed", "budget")}
            row.update(images_seen=(epoch + 1) * steps * job["batch"], seconds=round(time.perf_counter() - start, 1))
            probs = {}
            for name in ("val", "test"):
                probs[name] = model.predict(images[rows[name]].astype(np.float32), batch_size=64, verbose=0)
                row[f"{name} AUC any"] = round(float(roc_auc_score(labels[rows[name], 0], probs[name][:, 0])), 3)
            print(json.dumps(row), flush=True)
            results.append(row)
            if epoch + 1 == epochs and job.get("predictions"):
                name = "{arch}_{recipe}_{size}px_crop{crop:d}_batch{batch}_seed{seed}_{budget}".format(**job)
                np.savez(f"{job['predictions']}/{name}.npz", **probs, val_truth=labels[rows["val"]],
                         test_truth=labels[rows["test"]])

    model.fit(batches, epochs=epochs, verbose=0, callbacks=[Probe()])
    return results


def book_sweep(args) -> None:
    """Each lever trained as the book trains it, scored on validation (``ichlib.levers.measure_levers``: AUC,
    level-matched AUC, pointing game of Grad-CAM and of the mask head, seconds), one JSON line a row."""
    from ichlib.backend import configure

    configure()
    from ichlib import store
    from ichlib.book import project_root
    from ichlib.level import slice_levels
    from ichlib.levers import base_spec, measure_levers
    from ichlib.parameters import load_profiles
    from ichlib.runs import settings_in

    profile = load_profiles(project_root() / "profiles.yml")[args.profile]
    src = store.source(profile["data_dir"], profile["studies"], profile["seed"], profile["matrix"],
                       workers=args.workers, progress=False)
    strata = slice_levels(store.index(src, progress=False)[0])["stratum"]
    table = measure_levers(src, base_spec(args.run, settings_in(profile)), args.levers, profile["seed"], strata,
                           args.slices, args.workers)
    with open(args.out, "a") as out:
        for lever, row in table.iterrows():
            line = json.dumps({"lever": lever, "run": args.run, **{k: (None if v != v else round(float(v), 4))
                                                                  for k, v in row.items()}})
            print(line, flush=True)
            out.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="", help="sweep levers on this book profile's cohort and runs")
    parser.add_argument("--run", default="densenet121-three_window-optimised", help="with --profile: the run")
    parser.add_argument("--levers", nargs="*", default=[""], help="with --profile: KEY=VALUE changes, one string each")
    parser.add_argument("--studies", default="40", help="cohort sizes, comma-separated")
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--sizes", default="64", help="input sizes in px, comma-separated")
    parser.add_argument("--archs", default="resnet50")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--budgets", default="8000", help="training images per run, comma-separated")
    parser.add_argument("--every", type=int, default=800, help="evaluate every this many images")
    parser.add_argument("--batches", default="16", help="batch sizes, comma-separated")
    parser.add_argument("--crops", default="0", help="1: cut slices to the head's box first; e.g. 0,1 for both")
    parser.add_argument("--seed", type=int, default=0, help="the cohort's seed")
    parser.add_argument("--seeds", default="", help="training seeds, comma-separated (default: --seed)")
    parser.add_argument("--predictions", default="", help="folder for each run's final probabilities")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="recipe_sweep.jsonl")
    parser.add_argument("--slices", type=int, default=100, help="with --profile: validation bleeds for the pointing game")
    args = parser.parse_args()
    if args.profile:
        return book_sweep(args)

    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        if args.predictions:
            os.makedirs(args.predictions, exist_ok=True)
        seeds = [int(s) for s in (args.seeds or str(args.seed)).split(",")]
        for studies in map(int, args.studies.split(",")):
            for size in map(int, args.sizes.split(",")):
                for crop in (bool(int(c)) for c in args.crops.split(",")):
                    folder = f"{tmp}/studies{studies}"
                    facts = prepare(folder, studies, args.matrix, size, args.seed, args.workers, crop)
                    print(json.dumps(facts), flush=True)
                    jobs += [dict(data=f"{folder}/data{size}{'_crop' if crop else ''}.npz", studies=studies,
                                  size=size, crop=crop, arch=arch, recipe=recipe, seed=seed, batch=batch,
                                  budget=budget, every=args.every, predictions=args.predictions)
                             for arch in args.archs.split(",") for recipe in args.recipes.split(",")
                             for seed in seeds for budget in map(int, args.budgets.split(","))
                             for batch in map(int, args.batches.split(","))]
        if args.parallel > 1:
            with multiprocessing.get_context("spawn").Pool(args.parallel, maxtasksperchild=1) as pool:
                results = pool.map(one_run, jobs, chunksize=1)
        else:
            results = [one_run(job) for job in jobs]
    with open(args.out, "w") as f:
        for row in (r for rows in results for r in rows):
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
