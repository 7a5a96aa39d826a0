"""Spoken voice-overs resolved to audio before the timeline is built, the same way
wherever a document is loaded: the command line, the server at submit (which then ships
the audio with the job, :func:`bundle`) and the render nodes.

Where a scene's speech comes from, in order:

1. ``framefarm-speech/<request key>.wav`` and ``.json`` in the document's folder: what the
   server bundled with a job (a node renders exactly the audio the server measured, with
   no text-to-speech program of its own);
2. the cache (:func:`framefarm.speech.synth.cache_dir`), by a key that also holds the
   provider's version;
3. the provider, whose result goes into the cache.

The scene is then rewritten in the vocabulary the rest of the engine knows: the voice-over
gets a ``src`` naming the audio (an entry of ``Project.assets``, so ``duration: "auto"``
and the audio mix work as for a file) and the captions become text layers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Protocol

from framefarm import errors, media
from framefarm.document import models
from framefarm.document.loader import Cue, Project
from framefarm.document.timeline import Timeline
from framefarm.speech import captions, providers, synth

BUNDLE_DIR = "framefarm-speech"  # in a job's assets: the speech the server synthesised
SRC_PREFIX = "speech:"  # the ``src`` of a resolved voice-over (a key of Project.assets)


def request_key(voiceover: models.Voiceover) -> str:
    """What the document asks for, hashed: text, voice, rate and provider as written
    (not as configured), so a node finds the server's bundle whatever its own settings."""
    return synth.digest("request", voiceover.provider, voiceover.voice, voiceover.rate,
                        voiceover.text)


def speech_of(voiceover: models.Voiceover, base_dir: Path,
              provider_for: Callable[[str | None], providers.Provider] = providers.configured,
              ) -> synth.Speech:
    """The speech of a voice-over with ``text``: bundled, cached or synthesised now."""
    assert voiceover.text is not None
    asked = request_key(voiceover)
    bundled = synth.load(asked, base_dir / BUNDLE_DIR)
    if bundled is not None:
        return bundled
    provider = provider_for(voiceover.provider)
    # No voice: each phrase's is chosen by its script, a function of the text and the
    # provider's configuration (part of its identity).
    key = synth.digest("speech", provider.name, provider.identity(), voiceover.voice,
                       voiceover.rate, voiceover.text)
    return synth.speak(voiceover.text, provider=provider, voice=voiceover.voice,
                       rate=voiceover.rate, key=key, folder=synth.cache_dir())


def resolve(project: Project, provider_for: Callable[[str | None], providers.Provider]
            = providers.configured) -> Project:
    """The project with every spoken voice-over given its audio and every ``captions``
    turned into text layers (and ``cues``); a project without speech comes back as it is."""
    doc = project.document
    if not any(s.voiceover is not None and s.voiceover.text is not None for s in doc.scenes):
        return project
    assets = dict(project.assets)
    probed = dict(project.media)
    scenes: list[models.Scene] = []
    cues: dict[int, list[Cue]] = {}
    for i, scene in enumerate(doc.scenes):
        vo = scene.voiceover
        if vo is None or vo.text is None:
            scenes.append(scene)
            continue
        try:
            speech = speech_of(vo, project.base_dir, provider_for)
        except synth.Inaudible as exc:
            raise errors.DocumentError(f"scenes[{i}].voiceover.text: {exc}") from None
        src = f"{SRC_PREFIX}{speech.key}.wav"
        assets[src] = speech.audio
        probed[speech.audio] = media.probe(speech.audio, name=f"scenes[{i}].voiceover "
                                           "(its speech)")
        update: dict[str, object] = {"voiceover": vo.model_copy(update={"src": src})}
        if scene.captions is not None:
            cues[i] = captions.cues(speech, scene.captions, vo.delay)
            update["layers"] = [*scene.layers, *captions.layers(
                cues[i], speech, scene.captions, vo.delay)]
        scenes.append(scene.model_copy(update=update))
    return dataclasses.replace(project, document=doc.model_copy(update={"scenes": scenes}),
                               assets=assets, media=probed, cues=cues)


class BlobStore(Protocol):
    """The part of the service's storage :func:`bundle` uses."""

    def put_stream(self, key: str, stream: IO[bytes], max_bytes: int) -> tuple[int, str]: ...

    def rename(self, source: str, target: str) -> None: ...


def bundle(tl: Timeline, assets: Mapping[str, str], store: BlobStore,
           blob_key: Callable[[str], str]) -> dict[str, str]:
    """The job's assets plus the speech the server synthesised for it (as
    ``framefarm-speech/<request key>.wav`` and ``.json``, stored content-addressed under
    ``blob_key(sha256)``), so every node renders the same audio and captions."""
    found = dict(assets)
    for scene in tl.project.document.scenes:
        vo = scene.voiceover
        if vo is None or vo.text is None or vo.src is None:
            continue
        audio = tl.project.assets[vo.src]
        asked = request_key(vo)
        for suffix in (".wav", ".json"):
            name = f"{BUNDLE_DIR}/{asked}{suffix}"
            if name in found:  # the project holds it already (and its name is its content)
                continue
            source = audio.with_suffix(suffix)
            staging = f"uploads/speech-{time.monotonic_ns()}"
            with source.open("rb") as stream:
                _, sha = store.put_stream(staging, stream, 2**40)
            store.rename(staging, blob_key(sha))
            found[name] = sha
    return found
