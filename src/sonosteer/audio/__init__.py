"""Offline audio analysis: audio file -> analysis bundle on disk (design.md contract 1).

Public API: `analyze_file` (sonosteer.audio.pipeline), `AudioInputError` (sonosteer.audio.errors),
`load_bundle` / `AnalysisBundle` (sonosteer.audio.bundle). Import them from their modules: this
package stays light to import.
"""
