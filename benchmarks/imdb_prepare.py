"""Times IMDB preparation: cold (read, tokenize, build the vocabulary, encode 50,000 reviews)
and cached (a new datamodule finding the cache), and compares the tokenizer with Hugging Face
`tokenizers`' word-level model on the same texts, side by side in one run.

    python benchmarks/imdb_prepare.py [DATA_DIR]      # default: $IMDB_DIR or ../shared/data/imdb

Targets (issue #3): cold <= 15 s, cached <= 1 s on 2 cores.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    data_dir = Path(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("IMDB_DIR", ROOT.parent / "shared/data/imdb")
    )
    with tempfile.TemporaryDirectory() as tmp:
        # Cold for Hugging Face datasets' own arrow cache too.
        os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "hf")
        from seqmodels.data import IMDBDataModule, prepare_imdb

        start = time.perf_counter()
        prepare_imdb(data_dir, 10_000, cache_dir=Path(tmp) / "cache")
        cold = time.perf_counter() - start

        start = time.perf_counter()
        datamodule = IMDBDataModule(data_dir=str(data_dir), cache_dir=str(Path(tmp) / "cache"))
        datamodule.prepare_data()
        datamodule.setup()
        cached = time.perf_counter() - start

    print(
        f"cold prepare (tokenize, vocabulary, encode 50k reviews): {cold:6.2f} s (target <= 15 s)"
    )
    print(f"cached prepare (find cache, load, split):             {cached:6.2f} s (target <= 1 s)")
    compare_tokenizers(data_dir)


def compare_tokenizers(data_dir: Path) -> None:
    """Encoding all reviews: seqmodels.data.text against tokenizers' WordLevel, same vocabulary."""
    import pyarrow.parquet as pq

    from seqmodels.data.text import build_vocab, encode, tokenize

    texts = [
        t
        for split in ("train", "test")
        for t in pq.read_table(data_dir / f"{split}.parquet")["text"].to_pylist()
    ]
    start = time.perf_counter()
    documents = [tokenize(text) for text in texts]
    vocab = build_vocab(documents[:25_000], 10_000)
    encode(documents, vocab)
    ours = time.perf_counter() - start
    try:
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    except ImportError:
        print("tokenizers is not installed: pip install tokenizers to compare")
        return
    start = time.perf_counter()
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"<br\s*/?>"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        texts[:25_000],
        trainers.WordLevelTrainer(vocab_size=10_000, special_tokens=["<pad>", "<unk>"]),
    )
    [encoding.ids for encoding in tokenizer.encode_batch_fast(texts)]
    theirs = time.perf_counter() - start
    print(f"tokenize + vocabulary + encode, seqmodels regex: {ours:6.2f} s")
    print(
        f"tokenize + vocabulary + encode, tokenizers:      {theirs:6.2f} s "
        f"({theirs / ours:.1f}x the time)"
    )


if __name__ == "__main__":
    main()
