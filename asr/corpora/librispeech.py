"""LibriSpeech (OpenSLR 12) and its language models (OpenSLR 11): what there is to download,
downloading it, and reading a folder in its layout into utterances.

A LibriSpeech-layout folder holds ``SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` and
``SPEAKER-CHAPTER.trans.txt``; the synthetic corpus is written in the same layout, so
:func:`read_librispeech` reads both.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asr.audio import AUDIO_EXTENSIONS
from asr.corpora.download import DownloadError, download_file, extraction_marker, gunzip, safe_extract
from asr.corpora.recordings import Skipped, measure_recordings
from asr.io import walk_files
from asr.text import normalize_text

if TYPE_CHECKING:
    from asr.data import Utterance

LIBRISPEECH_RESOURCE = 12
LIBRISPEECH_LM_RESOURCE = 11

# Base URLs of OpenSLR and its mirrors; a resource lives under "<base>/<number>/".
OPENSLR_MIRRORS: dict[str, str] = {
    "openslr": "https://www.openslr.org/resources",
    "us": "https://us.openslr.org/resources",
    "eu": "https://openslr.elda.org/resources",
    "cn": "https://openslr.magicdatatech.com/resources",
}
DEFAULT_MIRROR = "openslr"

# The MD5 sums OpenSLR publishes next to the files (resources/<n>/md5sum.txt), the same
# ones public recipes (PaddleSpeech, pytorch-database-prep) check their downloads against.
LIBRISPEECH_MD5: dict[str, str] = {
    "dev-clean.tar.gz": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other.tar.gz": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean.tar.gz": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other.tar.gz": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100.tar.gz": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360.tar.gz": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500.tar.gz": "d1a0fd59409feb2c614ce4d30c387708",
}
LIBRISPEECH_LM_MD5: dict[str, str] = {
    "3-gram.arpa.gz": "74cbb837e582378c26c602e1c8cbcb9c",
    "3-gram.pruned.1e-7.arpa.gz": "9a0f1325bcaf3a0f7b7be4be10823c2a",
    "3-gram.pruned.3e-7.arpa.gz": "8f67ec741827742eee05799ab7605b50",
    "4-gram.arpa.gz": "6abdcd5b055bd482e4f9defe91d40408",
    "librispeech-vocab.txt": "bf3cc7a50112831ed8b0afa40cae96a5",
    "librispeech-lexicon.txt": "28f72663f6bfed7cd346283c064c315b",
    "librispeech-lm-norm.txt.gz": "c83c64c726a1aedfe65f80aa311de402",
}

LIBRISPEECH_SUBSETS: tuple[str, ...] = tuple(n.removesuffix(".tar.gz") for n in LIBRISPEECH_MD5)
LIBRISPEECH_ALIASES: dict[str, tuple[str, ...]] = {
    "train-960": ("train-clean-100", "train-clean-360", "train-other-500"),
    "train-460": ("train-clean-100", "train-clean-360"),
}

# LibriSpeech ships FLAC and converted copies are often WAV; a folder in its layout may hold any audio.
AUDIO_SUFFIXES = (".flac", ".wav") + tuple(e for e in AUDIO_EXTENSIONS if e not in (".flac", ".wav"))


def expand_subsets(names: list[str]) -> list[str]:
    """Replace the aliases ``train-960``/``train-460`` by their subsets, keep order, drop repeats.

    Raises :class:`DownloadError` for an unknown name.
    """
    subsets: list[str] = []
    for name in names:
        if name in LIBRISPEECH_ALIASES:
            expanded = LIBRISPEECH_ALIASES[name]
        elif name in LIBRISPEECH_SUBSETS:
            expanded = (name,)
        else:
            valid = ", ".join(LIBRISPEECH_SUBSETS + tuple(LIBRISPEECH_ALIASES))
            raise DownloadError(f"unknown LibriSpeech subset {name!r}; valid subsets: {valid}")
        subsets.extend(s for s in expanded if s not in subsets)
    return subsets


def resource_url(resource: int, mirror: str | None = None) -> str:
    """Base URL (ending in ``/``) of OpenSLR resource ``resource``.

    ``mirror`` is either a name from :data:`OPENSLR_MIRRORS` or a base URL holding the
    resource's files directly (e.g. ``https://openslr.elda.org/resources/12/`` or a
    private server); None means OpenSLR itself.
    """
    if mirror is None or mirror in OPENSLR_MIRRORS:
        return f"{OPENSLR_MIRRORS[mirror or DEFAULT_MIRROR]}/{resource}/"
    return mirror.rstrip("/") + "/"


def download_librispeech(
    subsets: list[str],
    dest: Path,
    *,
    mirror: str | None = None,
    checksums: dict[str, str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download and extract LibriSpeech subsets; return the ``dest/LibriSpeech/<subset>`` dirs.

    ``mirror`` is a name from :data:`OPENSLR_MIRRORS` (``"us"``, ``"eu"``, ``"cn"``) or a
    base URL replacing ``https://www.openslr.org/resources/12/``. Tarballs are kept in
    ``dest`` so a rerun skips them; a subset already extracted is skipped without touching
    the network, even if its tarball was deleted since.
    ``checksums`` (``{filename: md5}``, e.g. from :func:`read_md5sum_file`) replaces the
    built-in table, for a mirror serving other files; a file missing from it gets only the
    length check.
    """
    dest = Path(dest)
    base = resource_url(LIBRISPEECH_RESOURCE, mirror)
    table = LIBRISPEECH_MD5 if checksums is None else checksums
    dirs = []
    for subset in expand_subsets(subsets):
        archive = dest / f"{subset}.tar.gz"
        subset_dir = dest / "LibriSpeech" / subset
        if not (extraction_marker(archive, dest).exists() and subset_dir.is_dir()):
            download_file(base + archive.name, archive, table.get(archive.name), progress=progress)
            safe_extract(archive, dest)
        if not subset_dir.is_dir():
            raise DownloadError(
                f"{archive} did not contain LibriSpeech/{subset}/; delete it and "
                f"{extraction_marker(archive, dest).name}, check the mirror, and download it again"
            )
        dirs.append(subset_dir)
    return dirs


def download_librispeech_lm(
    names: list[str],
    dest: Path,
    *,
    mirror: str | None = None,
    checksums: dict[str, str] | None = None,
    progress: bool = True,
    unzip: bool = False,
) -> list[Path]:
    """Download LibriSpeech LM files (OpenSLR 11) into ``dest``; return their paths.

    With ``unzip=True`` each ``*.arpa.gz`` is also decompressed to ``*.arpa`` and that path
    is returned instead. ``mirror`` and ``checksums`` work as in :func:`download_librispeech`.
    """
    unknown = [name for name in names if name not in LIBRISPEECH_LM_MD5]
    if unknown:
        raise DownloadError(
            f"unknown LibriSpeech LM file {unknown[0]!r}; "
            f"valid files: {', '.join(LIBRISPEECH_LM_MD5)}"
        )
    dest = Path(dest)
    base = resource_url(LIBRISPEECH_LM_RESOURCE, mirror)
    table = LIBRISPEECH_LM_MD5 if checksums is None else checksums
    paths = []
    for name in names:
        path = download_file(base + name, dest / name, table.get(name), progress=progress)
        if unzip and name.endswith(".arpa.gz"):
            path = gunzip(path)
        paths.append(path)
    return paths


def _transcripts(chapter_dir: Path, skipped: list[Skipped]) -> tuple[dict[str, str], set[str]]:
    """Lines of the chapter's ``*.trans.txt`` files, id -> raw text, and the ids of lines
    skipped as not valid UTF-8 (each on its own: the rest of its file still counts)."""
    texts: dict[str, str] = {}
    bad: set[str] = set()
    for trans in sorted(chapter_dir.glob("*.trans.txt")):
        try:
            lines = trans.read_bytes().splitlines()
        except OSError as err:
            skipped.append(Skipped(str(trans), f"cannot read transcript ({err.strerror or err})"))
            continue
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                utt_id = raw.split(b" ", 1)[0].decode("utf-8", "replace")
                bad.add(utt_id)
                skipped.append(Skipped(f"{trans}:{number}", f"transcript line is not valid UTF-8 (utterance "
                                       f"{utt_id}: byte 0x{raw[err.start]:02x} at column {err.start + 1})"))
                continue
            if not line:
                continue
            utt_id, _, text = line.partition(" ")
            if utt_id in texts:
                skipped.append(Skipped(f"{trans}:{number}", f"duplicate utterance id ({utt_id})"))
                continue
            texts[utt_id] = text
    return texts, bad


def _phone_transcripts(chapter_dir: Path) -> dict[str, str]:
    """id -> the phones spoken, from the chapter's ``*.phones.txt`` (the synthetic corpus
    writes them beside its transcripts; LibriSpeech has none). An unreadable file or line
    only leaves those rows without phones."""
    phones: dict[str, str] = {}
    for path in sorted(chapter_dir.glob("*.phones.txt")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            utt_id, _, units = line.strip().partition(" ")
            if units:
                phones[utt_id] = " ".join(units.split())
    return phones


def _find_audio(chapter_dir: Path, utt_id: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        candidate = chapter_dir / f"{utt_id}{suffix}"
        if candidate.exists():
            return candidate
    return None


def read_librispeech(root: str | Path, jobs: int | None = None) -> tuple[list[Utterance], list[Skipped]]:
    """Scan a LibriSpeech-layout folder (a subset: speaker folders inside) into utterances.

    Every audio file is decoded once to catch corrupt files; transcripts are normalised.
    Returns the good utterances (sorted by id) and the skipped entries with reasons.
    """
    from asr.data import Utterance  # torch comes with it: downloads do without

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    skipped: list[Skipped] = []
    pending: list[tuple[str, Path, str, str, str]] = []  # id, audio path, text, speaker, phones
    transcripts, unreadable = walk_files(root, lambda name: name.endswith(".trans.txt"))
    for folder, reason in unreadable:
        skipped.append(Skipped(str(folder), f"cannot read folder ({reason}); whatever it holds is left out"))
    chapter_dirs = sorted({trans.parent for trans in transcripts})
    for chapter_dir in chapter_dirs:
        texts, bad_lines = _transcripts(chapter_dir, skipped)
        phones = _phone_transcripts(chapter_dir)
        for utt_id, raw_text in sorted(texts.items()):
            audio = _find_audio(chapter_dir, utt_id)
            if audio is None:
                skipped.append(Skipped(str(chapter_dir / f"{utt_id}.flac"), "audio file listed in transcript is missing"))
                continue
            text = normalize_text(raw_text)
            if not text:
                skipped.append(Skipped(str(audio), "transcript is empty after normalisation"))
                continue
            pending.append((utt_id, audio, text, utt_id.split("-")[0], phones.get(utt_id, "")))
        listed = set(texts) | bad_lines
        for audio in sorted(p for s in AUDIO_SUFFIXES for p in chapter_dir.glob(f"*{s}")):
            if audio.stem not in listed:
                skipped.append(Skipped(str(audio), "audio file has no transcript line"))
    seconds = measure_recordings((str(item[1]) for item in pending), jobs)
    utterances = []
    for utt_id, audio, text, speaker, spoken in pending:
        if isinstance(found := seconds[str(audio)], str):
            skipped.append(Skipped(str(audio), found))
        else:
            utterances.append(Utterance(utt_id, str(audio.resolve()), round(found, 4), text, speaker, phones=spoken))
    if not chapter_dirs:
        skipped.append(Skipped(str(root), "no SPEAKER-CHAPTER.trans.txt files found (is this a LibriSpeech-layout folder?)"))
    return sorted(utterances, key=lambda u: u.id), skipped
