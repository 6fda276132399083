"""The storyboard store: Gemini's structured output into rows, rows back into the same model.

``save_storyboard`` writes a ``StoryboardOutput`` or an ``EnhancedStoryboardOutput`` as the
project's ``scenes`` rows (and, when enhanced, its ``scene_manifests`` and
``scene_audio_manifests`` rows with their denormalised columns); ``load_storyboard`` rebuilds the
very same model from those rows, which are the source of truth (``projects.storyboard_raw``,
the copy of what was saved, is read only for what the rows do not hold). ``scenes_with_asset``
and ``scenes_with_speaker`` find scenes by tag with each dialect's JSON operators. Project ids
are ``uuid.UUID`` or their string form.

Every function takes a sync ``Session`` and works inside its transaction without committing, like
``Session.add``: the caller commits. With an ``AsyncSession``, call them through ``run_sync``:
``await session.run_sync(save_storyboard, project_id, storyboard)``.
"""

from vidpipe.db.store.kinds import Storyboard, StoryboardSchema
from vidpipe.db.store.lookups import SceneKey, scenes_with_asset, scenes_with_speaker
from vidpipe.db.store.reads import load_storyboard
from vidpipe.db.store.writes import save_storyboard, storyboard_batch

__all__ = [
    "SceneKey",
    "Storyboard",
    "StoryboardSchema",
    "load_storyboard",
    "save_storyboard",
    "scenes_with_asset",
    "scenes_with_speaker",
    "storyboard_batch",
]
