"""Every video model of the shipped price list (bot/data/pricing-rules.json, EvoLink's list of
2026-10-10), priced by hand from its rules and asserted exactly.

Each case's comment is the working: rate in credits per unit (1 credit = 10,000 uc), the
quantity rule evaluated, the rounding (half up on uc unless said), the minimum charge. The
default price of every model is checked in tests/core/test_price_snapshot.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain.pricing import PriceList

GEMINI = (
    "gemini-omni-1.1-flash-image-to-video",
    "gemini-omni-1.1-flash-reference-to-video",
    "gemini-omni-1.1-flash-text-to-video",
    "gemini-omni-1.1-flash-video-edit",
    "gemini-omni-1.1-flash-video-extend",
    "gemini-omni-flash-image-to-video",
    "gemini-omni-flash-reference-to-video",
    "gemini-omni-flash-text-to-video",
    "gemini-omni-flash-video-edit",
)
HAPPYHORSE_10 = tuple(f"happyhorse-1.0-{op}-to-video" for op in ("image", "reference", "text"))
HAPPYHORSE_11 = tuple(f"happyhorse-1.1-{op}-to-video" for op in ("image", "reference", "text"))


def _both(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}-image-to-video", f"{prefix}-text-to-video")


Case = tuple[tuple[str, ...], dict[str, object], str]

# fmt: off
CASES: list[Case] = [
    # doubao-seedance-1.0-pro-fast: 0.9/unit, min 0.9; q = d × {1080p 2.2, 480p 0.45, 720p 1}
    # 5 × 2.2 = 11 × 0.9 = 9.9
    (("doubao-seedance-1.0-pro-fast",), {"duration_seconds": 5, "quality": "1080p"}, "9.9"),
    # 2 × 0.45 = 0.9 × 0.9 = 0.81 < min 0.9 → 0.9
    (("doubao-seedance-1.0-pro-fast",), {"duration_seconds": 2, "quality": "480p"}, "0.9"),
    # 12 × 1 × 0.9 = 10.8
    (("doubao-seedance-1.0-pro-fast",), {"duration_seconds": 12, "quality": "720p"}, "10.8"),
    # gemini omni: per 1k tokens, ceil on uc: input 867 uc, video output 10,115, other 5,202
    # 1,500 in: 1.5 × 867 = 1,300.5 → 1,301; 10,000 video: 10 × 10,115 = 101,150; other 0:
    # skipped → 102,451 uc = 10.2451
    (GEMINI,
     {"input_tokens": 1500, "video_output_tokens": 10000, "other_output_tokens": 0}, "10.2451"),
    # 1 token each: 0.867 → 1; 10.115 → 11; 5.202 → 6 → 18 uc = 0.0018
    (GEMINI, {"input_tokens": 1, "video_output_tokens": 1, "other_output_tokens": 1}, "0.0018"),
    # grok-imagine: 1.36/s, min 8.16; q = d × {480p 1, 720p 1.4}
    (_both("grok-imagine"), {"duration_seconds": 6, "quality": "480p"}, "8.16"),  # 6 × 1.36
    (_both("grok-imagine"), {"duration_seconds": 10, "quality": "720p"}, "19.04"),  # 14 × 1.36
    (_both("grok-imagine"), {"duration_seconds": 30, "quality": "720p"}, "57.12"),  # 42 × 1.36
    # grok-imagine-video-1.0-i2v: video 2.38/s (min 2.38) + 0.0952 per input image
    # 6 × 2.38 = 14.28 + 1 × 0.0952 = 14.3752
    (("grok-imagine-video-1.0-i2v",), {"duration_seconds": 6, "input_images": 1}, "14.3752"),
    # 10 × 1.4 = 14 × 2.38 = 33.32 + 3 × 0.0952 = 0.2856 → 33.6056
    (("grok-imagine-video-1.0-i2v",),
     {"duration_seconds": 10, "quality": "720p", "input_images": 3}, "33.6056"),
    # 1 × 2.38 + 0.0952 = 2.4752
    (("grok-imagine-video-1.0-i2v",), {"duration_seconds": 1, "input_images": 1}, "2.4752"),
    # grok-imagine-video-1.0-t2v: 15 × 1.4 = 21 × 2.38 = 49.98; 1 × 2.38 = 2.38
    (("grok-imagine-video-1.0-t2v",), {"duration_seconds": 15, "quality": "720p"}, "49.98"),
    (("grok-imagine-video-1.0-t2v",), {"duration_seconds": 1, "quality": "480p"}, "2.38"),
    # grok-imagine-video-1.5-preview: 3.808/s × {1080p 3.125, 480p 1, 720p 1.75}; 0.476/image
    # 6 × 3.808 = 22.848, no images (component skipped)
    (("grok-imagine-video-1.5-preview",), {"duration_seconds": 6, "input_images": 0}, "22.848"),
    # 8 × 3.125 = 25 × 3.808 = 95.2 + 2 × 0.476 = 0.952 → 96.152
    (("grok-imagine-video-1.5-preview",),
     {"duration_seconds": 8, "quality": "1080p", "input_images": 2}, "96.152"),
    # 4 × 1.75 = 7 × 3.808 = 26.656
    (("grok-imagine-video-1.5-preview",), {"duration_seconds": 4, "quality": "720p"}, "26.656"),
    # happyhorse 1.0 (i2v, r2v, t2v): 7.616/s, min 22.848; 1080p × 1.72
    (HAPPYHORSE_10, {"duration_seconds": 5, "quality": "720p"}, "38.08"),  # 5 × 7.616
    # 10 × 1.72 = 17.2 × 76,160 uc = 1,309,952 uc
    (HAPPYHORSE_10, {"duration_seconds": 10, "quality": "1080p"}, "130.9952"),
    (HAPPYHORSE_10, {"duration_seconds": 3, "quality": "720p"}, "22.848"),  # 3 × 7.616 = min
    (HAPPYHORSE_10, {"duration_seconds": "3.5", "quality": "720p"}, "26.656"),  # 3.5 × 7.616
    # happyhorse 1.1: 1080p × 1.29: 12.9 × 7.616 = 98.2464
    (HAPPYHORSE_11, {"duration_seconds": 10, "quality": "1080p"}, "98.2464"),
    (HAPPYHORSE_11, {"duration_seconds": 5, "quality": "720p"}, "38.08"),
    # happyhorse-1.0-video-edit: 7.616/s, min 45.696;
    # q = ceil((in + (out > 0 ? out : min(in, 15))) × 10) / 10 × quality
    # in 15, out 0: 15 + 15 = 30 × 7.616 = 228.48
    (("happyhorse-1.0-video-edit",), {"input_seconds": 15, "output_seconds": 0}, "228.48"),
    # in 4: 4 + 4 = 8 × 7.616 = 60.928; in 3: 6 × 7.616 = 45.696 = the minimum
    (("happyhorse-1.0-video-edit",), {"input_seconds": 4}, "60.928"),
    (("happyhorse-1.0-video-edit",), {"input_seconds": 3}, "45.696"),
    # in 5.04 + out 5.01 = 10.05 → ceil(100.5) = 101 → 10.1 × 1.72 = 17.372 × 76,160 uc =
    # 1,323,051.52 → 1,323,052 uc
    (("happyhorse-1.0-video-edit",),
     {"input_seconds": "5.04", "output_seconds": "5.01", "quality": "1080p"}, "132.3052"),
    # kling-custom-element: q = 1 × 10 uc = 0.001
    (("kling-custom-element",), {}, "0.001"),
    # kling-o1-image-to-video: 8/s, min 40; q = lookup(duration_seconds) {5: 5, 10: 10}
    (("kling-o1-image-to-video",), {"duration_seconds": "5"}, "40"),
    (("kling-o1-image-to-video",), {"duration_seconds": 10}, "80"),
    # kling-o1-video-edit: 12/s, min 36; q = max(ceil(in × 100) / 100, 3)
    (("kling-o1-video-edit",), {"input_seconds": 0}, "36"),  # max(0, 3) = 3 × 12
    (("kling-o1-video-edit",), {"input_seconds": "7.123"}, "85.56"),  # ceil(712.3) → 7.13 × 12
    (("kling-o1-video-edit",), {"input_seconds": 10}, "120"),
    # kling-o1-video-edit-fast: 6.8/s, min 40.8; q = max(ceil(in × 100) / 100, 6)
    (("kling-o1-video-edit-fast",), {"input_seconds": 0}, "40.8"),  # 6 × 6.8
    (("kling-o1-video-edit-fast",), {"input_seconds": "10.001"}, "68.068"),  # 10.01 × 6.8
    # kling-o3 i2v/t2v: 5.4/s, min 16.2; sound on {1080p 1.667, 4k 5, 720p 1.334},
    # off {1080p 1.334, 4k 5, 720p 1}
    (_both("kling-o3"), {"duration_seconds": 5, "quality": "720p", "sound": "off"}, "27"),
    # 5 × 1.667 = 8.335 × 54,000 uc = 450,090 uc
    (_both("kling-o3"), {"duration_seconds": 5, "quality": "1080p", "sound": "on"}, "45.009"),
    # 3 × 1.334 = 4.002 × 54,000 = 216,108 uc
    (_both("kling-o3"), {"duration_seconds": 3, "quality": "720p", "sound": "on"}, "21.6108"),
    (_both("kling-o3"), {"duration_seconds": 10, "quality": "4k", "sound": "on"}, "270"),  # 50
    # kling-o3-reference-to-video: 8.1/s, min 24.3; 1080p × 1.334
    (("kling-o3-reference-to-video",), {"duration_seconds": 5}, "40.5"),  # 5 × 8.1
    # 10 × 1.334 = 13.34 × 81,000 = 1,080,540 uc
    (("kling-o3-reference-to-video",), {"duration_seconds": 10, "quality": "1080p"}, "108.054"),
    (("kling-o3-reference-to-video",), {"duration_seconds": 3}, "24.3"),  # 3 × 8.1 = min
    # kling-o3-video-edit: 8.1/s, min 24.3;
    # q = (out > 0 ? floor(out + 0.5) : in > 0 ? ceil(in) : 5) × {1080p 1.334, 720p 1}
    (("kling-o3-video-edit",), {"output_seconds": 0, "input_seconds": 0}, "40.5"),  # 5 × 8.1
    (("kling-o3-video-edit",), {"output_seconds": "7.5"}, "64.8"),  # floor(8.0) = 8 × 8.1
    # ceil(6.2) = 7 × 1.334 = 9.338 × 81,000 = 756,378 uc
    (("kling-o3-video-edit",), {"input_seconds": "6.2", "quality": "1080p"}, "75.6378"),
    (("kling-o3-video-edit",), {"output_seconds": "2.4"}, "24.3"),  # 2 × 8.1 = 16.2 < min
    # kling-v2.6-motion-control: 4.5/s, min 13.5;
    # q = (out > 0 ? floor(out + .5) : in > 0 ? floor(in + .5) : 10) × {1080p 1.6}
    (("kling-v2.6-motion-control",), {}, "45"),  # 10 × 4.5
    # floor(13.0) = 13 × 1.6 = 20.8 × 4.5 = 93.6
    (("kling-v2.6-motion-control",), {"input_seconds": "12.5", "quality": "1080p"}, "93.6"),
    (("kling-v2.6-motion-control",), {"output_seconds": "2.49"}, "13.5"),  # 2 × 4.5 = 9 < min
    # kling-v3 i2v/t2v: 5.4/s, min 16.2; sound on {1080p 2, 4k 5, 720p 1.5}, off {1.334, 5, 1}
    (_both("kling-v3"), {"duration_seconds": 5, "quality": "720p", "sound": "off"}, "27"),
    (_both("kling-v3"), {"duration_seconds": 10, "quality": "1080p", "sound": "on"}, "108"),
    (_both("kling-v3"), {"duration_seconds": 5, "quality": "720p", "sound": "on"}, "40.5"),
    # 15 × 1.334 = 20.01 × 5.4 = 108.054
    (_both("kling-v3"), {"duration_seconds": 15, "quality": "1080p", "sound": "off"}, "108.054"),
    # kling-v3-motion-control: 8.1648/s, min 24.4944; same quantity rule, 1080p × 1.334
    (("kling-v3-motion-control",), {}, "81.648"),  # 10 × 8.1648
    # floor(5.5) = 5 × 1.334 = 6.67 × 81,648 uc = 544,592.16 → 544,592 uc
    (("kling-v3-motion-control",), {"output_seconds": 5, "quality": "1080p"}, "54.4592"),
    # floor(2.5) = 2 × 8.1648 = 16.3296 < min 24.4944
    (("kling-v3-motion-control",), {"input_seconds": 2}, "24.4944"),
    # kling-v3-turbo: 7.2/s, min 21.6; 1080p × 1.25
    (_both("kling-v3-turbo"), {"duration_seconds": 5, "quality": "720p"}, "36"),
    (_both("kling-v3-turbo"), {"duration_seconds": 8, "quality": "1080p"}, "72"),  # 10 × 7.2
    (_both("kling-v3-turbo"), {"duration_seconds": 3, "quality": "720p"}, "21.6"),  # = min
    # minimax-h3 i2v/t2v: 8.398/s (83,980 uc = 6,460 × 13), min 20.672;
    # q = d × {2k 13, 768p 8} / 13
    (_both("minimax-h3"), {"duration_seconds": 4, "quality": "768p"}, "20.672"),  # 32 × 6,460
    (_both("minimax-h3"), {"duration_seconds": 10, "quality": "2k"}, "83.98"),  # 10 × 8.398
    (_both("minimax-h3"), {"duration_seconds": 6, "quality": "768p"}, "31.008"),  # 48 × 6,460
    # minimax-h3-reference-to-video: q = ceil(d + in) × {2k 13, 768p 8} / 13 at 8.398;
    # images beyond 5: 2.584 each
    (("minimax-h3-reference-to-video",), {}, "20.672"),
    # ceil(7.5) = 8 × 8 = 64 × 6,460 = 413,440 uc + (7 − 5) × 25,840 = 51,680 → 465,120 uc
    (("minimax-h3-reference-to-video",),
     {"duration_seconds": 5, "input_seconds": "2.5", "image_count": 7}, "46.512"),
    # 4 × 83,980 = 335,920 + 1 × 25,840 = 361,760 uc
    (("minimax-h3-reference-to-video",),
     {"duration_seconds": 4, "quality": "2k", "image_count": 6}, "36.176"),
    # minimax-h3-max i2v/t2v: 5.168/s, min 16.15; 480p × 0.625
    (_both("minimax-h3-max"), {"duration_seconds": 5, "quality": "768p"}, "25.84"),
    (_both("minimax-h3-max"), {"duration_seconds": 5, "quality": "480p"}, "16.15"),  # 3.125 u
    (_both("minimax-h3-max"), {"duration_seconds": 15, "quality": "768p"}, "77.52"),
    # minimax-h3-max-reference-to-video: video 5.168/s; input video 9.2378 × ceil(in) ×
    # {480p 553, 768p 1430} / 1430 (if in > 0); images beyond 2: 4.7804 each
    # 25.84 + ceil(3.2) = 4 × 9.2378 = 36.9512 + 2 × 4.7804 = 9.5608 → 72.352
    (("minimax-h3-max-reference-to-video",),
     {"duration_seconds": 5, "input_seconds": "3.2", "image_count": 4}, "72.352"),
    # 480p: 3.125 × 51,680 = 161,500 uc (= min); 1 × 553 / 1430 × 92,378 = 553 × 64.6 =
    # 35,723.8 → 35,724 uc; total 197,224 uc
    (("minimax-h3-max-reference-to-video",),
     {"duration_seconds": 5, "quality": "480p", "input_seconds": 1}, "19.7224"),
    # minimax-h3-max-turbo: 2.584/s, min 8.075
    (_both("minimax-h3-max-turbo"), {"duration_seconds": 5, "quality": "768p"}, "12.92"),
    (_both("minimax-h3-max-turbo"), {"duration_seconds": 5, "quality": "480p"}, "8.075"),
    (_both("minimax-h3-max-turbo"), {"duration_seconds": 10, "quality": "768p"}, "25.84"),
    # omnihuman-1.5: 12/s, min 12; q = ceil(d × 10) / 10
    (("omnihuman-1.5",), {"duration_seconds": 10}, "120"),
    (("omnihuman-1.5",), {"duration_seconds": "3.01"}, "37.2"),  # ceil(30.1) = 31 → 3.1 × 12
    (("omnihuman-1.5",), {"duration_seconds": "0.5"}, "12"),  # 0.5 × 12 = 6 < min 12
    # seedance-1.5-pro: 1.7784/s, min 3.4445; q = d × {1080p 2.23, 480p 0.46, 720p 1} ×
    # (audio ? 2 : 1)
    (("seedance-1.5-pro",), {}, "17.784"),  # 5 × 1 × 2 = 10 × 1.7784
    # 12 × 2.23 × 2 = 53.52 × 17,784 uc = 951,799.68 → 951,800 uc
    (("seedance-1.5-pro",), {"duration_seconds": 12, "quality": "1080p"}, "95.18"),
    # 4 × 0.46 × 2 = 3.68 × 17,784 = 65,445.12 → 65,445 uc
    (("seedance-1.5-pro",), {"duration_seconds": 4, "quality": "480p"}, "6.5445"),
    # seedance-2.0-fast-image-to-video: 8.2013/s, min 15.1893; 480p × 0.465
    (("seedance-2.0-fast-image-to-video",), {"duration_seconds": 5}, "41.0065"),
    # 4 × 0.465 = 1.86 × 82,013 = 152,544.18 → 152,544 uc
    (("seedance-2.0-fast-image-to-video",), {"duration_seconds": 4, "quality": "480p"}, "15.2544"),
    (("seedance-2.0-fast-image-to-video",), {"duration_seconds": 15}, "123.0195"),
    # seedance-2.0-fast-reference-to-video: q = ceil((d + (in > 0 ? max(in, d) : 0)) × 10) /
    # 10 × (in > 0 ? {480p 0.277, 720p 0.595} : {480p 0.465, 720p 1})
    (("seedance-2.0-fast-reference-to-video",), {}, "41.0065"),
    # 5 + max(3, 5) = 10 × 0.595 = 5.95 × 82,013 = 487,977.35 → 487,977 uc
    (("seedance-2.0-fast-reference-to-video",), {"input_seconds": 3}, "48.7977"),
    # 4 + 8.33 = 12.33 → ceil(123.3) = 124 → 12.4 × 0.277 = 3.4348 × 82,013 =
    # 281,698.2524 → 281,698 uc
    (("seedance-2.0-fast-reference-to-video",),
     {"duration_seconds": 4, "quality": "480p", "input_seconds": "8.33"}, "28.1698"),
    # seedance-2.0-fast-text-to-video: 41.0065 + web searches 0.04 each (3 → 0.12)
    (("seedance-2.0-fast-text-to-video",), {"search_count": 0}, "41.0065"),
    (("seedance-2.0-fast-text-to-video",), {"search_count": 3}, "41.1265"),
    # seedance-2.0-image-to-video: 13.5/s, min 25.002; {1080p 2.5, 480p 0.465, 4k 5.1}
    (("seedance-2.0-image-to-video",), {"duration_seconds": 5, "quality": "720p"}, "67.5"),
    (("seedance-2.0-image-to-video",), {"duration_seconds": 4, "quality": "480p"}, "25.11"),
    (("seedance-2.0-image-to-video",), {"duration_seconds": 10, "quality": "4k"}, "688.5"),
    (("seedance-2.0-image-to-video",), {"duration_seconds": 8, "quality": "1080p"}, "270"),
    # seedance-2.0-mini i2v/t2v: 2.7/s, min 5.0004: 5 × 2.7; 1.86 × 2.7; 15 × 2.7
    (_both("seedance-2.0-mini"), {"duration_seconds": 5, "quality": "720p"}, "13.5"),
    (_both("seedance-2.0-mini"), {"duration_seconds": 4, "quality": "480p"}, "5.022"),
    (_both("seedance-2.0-mini"), {"duration_seconds": 15, "quality": "720p"}, "40.5"),
    # seedance-2.0-mini-reference-to-video: references {480p 0.284, 720p 0.609}
    (("seedance-2.0-mini-reference-to-video",), {}, "13.5"),
    # 6 + max(10, 6) = 16 × 0.609 = 9.744 × 27,000 = 263,088 uc
    (("seedance-2.0-mini-reference-to-video",),
     {"duration_seconds": 6, "input_seconds": 10}, "26.3088"),
    # seedance-2.0-reference-to-video: references {1080p 1.52, 480p 0.284, 4k 3.15, 720p 0.609}
    (("seedance-2.0-reference-to-video",), {}, "67.5"),
    # 5 + 5 = 10 × 1.52 = 15.2 × 13.5 = 205.2
    (("seedance-2.0-reference-to-video",),
     {"duration_seconds": 5, "quality": "1080p", "input_seconds": 5}, "205.2"),
    # 4 + max(2, 4) = 8 × 3.15 = 25.2 × 13.5 = 340.2
    (("seedance-2.0-reference-to-video",),
     {"duration_seconds": 4, "quality": "4k", "input_seconds": 2}, "340.2"),
    # seedance-2.0-text-to-video: 5 × 13.5 = 67.5; 25.11 + 2 searches × 0.04 = 25.19
    (("seedance-2.0-text-to-video",), {"duration_seconds": 5, "search_count": 0}, "67.5"),
    (("seedance-2.0-text-to-video",),
     {"duration_seconds": 4, "quality": "480p", "search_count": 2}, "25.19"),
    # seedance-2.5-draft-to-video: 20.09/s, min 200.9; s = clamp(src, 4, 30);
    # q = ceil((s + (in > 0 ? max(in, s) : 0)) × 10) / 10 × (in > 0 ? 1.52 : 2.5)
    (("seedance-2.5-draft-to-video",), {"source_output_seconds": 5}, "251.125"),  # 12.5 u
    (("seedance-2.5-draft-to-video",), {"source_output_seconds": 2}, "200.9"),  # 4 × 2.5 = 10
    # 10 + 12.34 = 22.34 → ceil(223.4) = 224 → 22.4 × 1.52 = 34.048 × 200,900 uc =
    # 6,840,243.2 → 6,840,243 uc
    (("seedance-2.5-draft-to-video",),
     {"source_output_seconds": 10, "input_seconds": "12.34"}, "684.0243"),
    # seedance-2.5-image-to-video: 20.09/s, min 37.3674;
    # q = ceil((duration = -1 ? clamp(duration_seconds, 4, 30) : clamp(duration, 4, 30)) × 10)
    # / 10 × {1080p 2.5, 480p 0.465, 720p 1}
    (("seedance-2.5-image-to-video",), {"duration": 5}, "100.45"),  # 5 × 20.09
    # automatic: 12.34 → ceil(123.4) = 124 → 12.4 × 2.5 = 31 × 20.09 = 622.79
    (("seedance-2.5-image-to-video",),
     {"duration": -1, "duration_seconds": "12.34", "quality": "1080p"}, "622.79"),
    # 4 × 0.465 = 1.86 × 200,900 = 373,674 uc = exactly the minimum
    (("seedance-2.5-image-to-video",), {"duration": 4, "quality": "480p"}, "37.3674"),
    (("seedance-2.5-image-to-video",), {"duration": 30}, "602.7"),  # 30 × 20.09
    # seedance-2.5-reference-to-video: 5 + max(8, 5) = 13 × 0.609 = 7.917 × 200,900 uc =
    # 1,590,525.3 → 1,590,525 uc
    (("seedance-2.5-reference-to-video",), {"duration": 5, "input_seconds": 0}, "100.45"),
    (("seedance-2.5-reference-to-video",), {"duration": 5, "input_seconds": 8}, "159.0525"),
    # seedance-2.5-text-to-video: 10 × 0.465 = 4.65 × 20.09 = 93.4185 + 5 × 0.04 = 93.6185
    (("seedance-2.5-text-to-video",), {"duration": 5}, "100.45"),
    (("seedance-2.5-text-to-video",),
     {"duration": 10, "quality": "480p", "search_count": 5}, "93.6185"),
    # seedance-2.5-video-edit: o = ds > 0 ? clamp(ds, 4, 30) : first > 0 ? min(first, 30) : 30
    # defaults: o = 30, in 30 → 30 + 30 = 60 × 0.609 = 36.54 × 20.09 = 734.0886
    (("seedance-2.5-video-edit",), {}, "734.0886"),
    # first 8, in 8: 8 + 8 = 16 × 0.609 = 9.744 × 200,900 = 1,957,569.6 → 1,957,570 uc
    (("seedance-2.5-video-edit",),
     {"duration_seconds": 0, "first_input_video_seconds": 8, "input_seconds": 8}, "195.757"),
    # ds 5, no input: 5 × 2.5 = 12.5 × 20.09 = 251.125
    (("seedance-2.5-video-edit",),
     {"duration_seconds": 5, "input_seconds": 0, "quality": "1080p"}, "251.125"),
    # seedance-2.5-video-extend: 5 + max(30, 5) = 35 × 0.609 = 21.315 × 200,900 =
    # 4,282,183.5 → half up 4,282,184 uc
    (("seedance-2.5-video-extend",), {"duration": 5, "input_seconds": 30}, "428.2184"),
    # 6 + max(4, 6) = 12 × 0.284 = 3.408 × 200,900 = 684,667.2 → 684,667 uc
    (("seedance-2.5-video-extend",),
     {"duration": 6, "input_seconds": 4, "quality": "480p"}, "68.4667"),
    # sora-2-preview: 5.76/s, min 23.04; q = lookup(duration) {4, 8, 12}
    (("sora-2-preview",), {"duration": 4}, "23.04"),
    (("sora-2-preview",), {"duration": 8}, "46.08"),
    (("sora-2-preview",), {"duration": 12}, "69.12"),
    # tencent-video-upscale: q = max(ceil(out − 0.000001), 1) × {1080p 1, 2k 1.75, 4k 4,
    # 720p 0.4375}; fps ≤ 30.05: 0.544/unit, ≤ 60.05: 1.088, above: 2.176; no minimum
    (("tencent-video-upscale",), {"output_seconds": 10}, "5.44"),  # 10 × 1 × 0.544, 30 fps
    # ceil(10.199999) = 11 × 4 = 44 × 1.088 = 47.872
    (("tencent-video-upscale",),
     {"output_seconds": "10.2", "quality": "4k", "output_fps": 60}, "47.872"),
    # max(ceil(0.499999) = 1, 1) × 0.4375 × 21,760 uc = 9,520 uc
    (("tencent-video-upscale",),
     {"output_seconds": "0.5", "quality": "720p", "output_fps": 120}, "0.952"),
    # veo-3.1-fast-generate-preview: 6.336/s, min 25.344; only d = 4, 6, 8;
    # q = d × n × (audio ? (4k ? 3.51 : 1.5) : (4k ? 3 : 1))
    (("veo-3.1-fast-generate-preview",), {}, "38.016"),  # 4 × 1.5 = 6 × 6.336
    # 8 × 2 × 3.51 = 56.16 × 63,360 = 3,558,297.6 → 3,558,298 uc
    (("veo-3.1-fast-generate-preview",),
     {"duration_seconds": 8, "video_count": 2, "quality": "4k"}, "355.8298"),
    (("veo-3.1-fast-generate-preview",),
     {"duration_seconds": 6, "quality": "1080p", "generate_audio": False}, "38.016"),
    (("veo-3.1-fast-generate-preview",), {"generate_audio": False}, "25.344"),  # 4 = min
    # veo-3.1-generate-preview: 12.672/s, min 50.688; audio: 4k 3 else 2; none: 4k 2 else 1
    (("veo-3.1-generate-preview",), {}, "101.376"),  # 4 × 2 = 8 × 12.672
    # 8 × 4 × 3 = 96 × 12.672 = 1,216.512
    (("veo-3.1-generate-preview",),
     {"duration_seconds": 8, "video_count": 4, "quality": "4k"}, "1216.512"),
    (("veo-3.1-generate-preview",), {"duration_seconds": 6, "generate_audio": False}, "76.032"),
    # per request (q = 1): veo3-fast 25.7, veo3.1-fast 21.6, extend 12.1, veo3.1-pro 162
    (("veo3-fast",), {"duration_seconds": 8, "quality": "standard"}, "25.7"),
    (("veo3.1-fast",), {"duration_seconds": 8, "quality": "720p"}, "21.6"),
    (("veo3.1-fast-extend",), {"duration_seconds": 8, "quality": "standard"}, "12.1"),
    (("veo3.1-pro",), {"duration_seconds": 8, "quality": "720p"}, "162"),
    # videoretalk: 0.8/s, min 1.6; q = duration_seconds
    (("videoretalk",), {"duration_seconds": 60}, "48"),
    (("videoretalk",), {"duration_seconds": 1}, "1.6"),  # 0.8 < min 1.6
    # wan2.5: 5.1/s, min 5.1; {1080p 1.67, 480p 0.5, 720p 1}
    (_both("wan2.5"), {"duration_seconds": 5, "quality": "720p"}, "25.5"),
    (_both("wan2.5"), {"duration_seconds": 10, "quality": "1080p"}, "85.17"),  # 16.7 × 5.1
    (_both("wan2.5"), {"duration_seconds": 5, "quality": "480p"}, "12.75"),  # 2.5 × 5.1
    # wan2.6: 4.76/s, min 6; 1080p × 1.67
    (_both("wan2.6"), {"duration_seconds": 5, "quality": "720p"}, "23.8"),
    (_both("wan2.6"), {"duration_seconds": 2, "quality": "720p"}, "9.52"),
    (_both("wan2.6"), {"duration_seconds": 15, "quality": "1080p"}, "119.238"),  # 25.05 × 4.76
    # wan2.6-image-to-video-flash: 2.38/s, min 6; × (audio ? 1 : 0.5)
    (("wan2.6-image-to-video-flash",), {}, "11.9"),  # 5 × 2.38
    (("wan2.6-image-to-video-flash",),
     {"duration_seconds": 2, "generate_audio": False}, "6"),  # 1 × 2.38 < min 6
    (("wan2.6-image-to-video-flash",),
     {"duration_seconds": 10, "quality": "1080p"}, "39.746"),  # 16.7 × 2.38
    # wan2.6-reference-video: 4.76/s, min 9; q = (in + out) × quality
    (("wan2.6-reference-video",), {"input_seconds": 5, "output_seconds": 5}, "47.6"),
    (("wan2.6-reference-video",), {"input_seconds": 0, "output_seconds": 2}, "9.52"),
    # (3.3 + 4) × 1.67 = 12.191 × 47,600 = 580,291.6 → 580,292 uc
    (("wan2.6-reference-video",),
     {"input_seconds": "3.3", "output_seconds": 4, "quality": "1080p"}, "58.0292"),
    # wan2.6-reference-video-flash: 2.38/s, min 9; × (audio ? 1 : 0.5)
    (("wan2.6-reference-video-flash",), {}, "23.8"),  # 10 × 2.38
    (("wan2.6-reference-video-flash",),
     {"input_seconds": 0, "output_seconds": 2, "generate_audio": False}, "9"),  # 2.38 < 9
    # wan2.7: 5.44/s, min 10.88; 1080p × 1.67
    (_both("wan2.7"), {"duration_seconds": 5, "quality": "720p"}, "27.2"),
    (_both("wan2.7"), {"duration_seconds": 2, "quality": "720p"}, "10.88"),  # = min
    (_both("wan2.7"), {"duration_seconds": 7, "quality": "1080p"}, "63.5936"),  # 11.69 × 5.44
    # wan2.7-reference-video: q = (min(in, 5) + out) × quality
    (("wan2.7-reference-video",), {"input_seconds": 0, "output_seconds": 5}, "27.2"),
    # (5 + 10) × 1.67 = 25.05 × 5.44 = 136.272
    (("wan2.7-reference-video",),
     {"input_seconds": 8, "output_seconds": 10, "quality": "1080p"}, "136.272"),
    # wan2.7-video-edit: q = (min(in, 10) + (out = 0 ? 10 : out)) × quality
    (("wan2.7-video-edit",), {}, "108.8"),  # (10 + 10) × 5.44
    (("wan2.7-video-edit",), {"input_seconds": 4, "output_seconds": 0}, "76.16"),  # 14
    # (10 + 3) × 1.67 = 21.71 × 5.44 = 118.1024
    (("wan2.7-video-edit",),
     {"input_seconds": 12, "output_seconds": 3, "quality": "1080p"}, "118.1024"),
    # wan3.0: 2.55/s, min 5.1; q = (d = -1 ? 30 : d) × {1080p 4, 480p 1, 720p 2}
    (_both("wan3.0"), {"duration_seconds": 5, "quality": "720p"}, "25.5"),
    (_both("wan3.0"), {"duration_seconds": -1, "quality": "1080p"}, "306"),  # 120 × 2.55
    (_both("wan3.0"), {"duration_seconds": 2, "quality": "480p"}, "5.1"),  # = min
    # wan3.0-prime: 3.9304/s, min 7.8608; {1080p 4.12, 480p 1, 720p 2.06}
    # 5 × 2.06 = 10.3 × 39,304 = 404,831.2 → 404,831 uc
    (_both("wan3.0-prime"), {"duration_seconds": 5, "quality": "720p"}, "40.4831"),
    (_both("wan3.0-prime"), {"duration_seconds": 2, "quality": "480p"}, "7.8608"),  # = min
    # 30 × 4.12 = 123.6 × 39,304 = 4,857,974.4 → 4,857,974 uc
    (_both("wan3.0-prime"), {"duration_seconds": -1, "quality": "1080p"}, "485.7974"),
    # 3 × 2.06 = 6.18 × 39,304 = 242,898.72 → 242,899 uc
    (_both("wan3.0-prime"), {"duration_seconds": 3, "quality": "720p"}, "24.2899"),
    # wan3.0-prime-reference-video: q = (min(in, 15) + (out = -1 ? 30 : out)) × quality
    (("wan3.0-prime-reference-video",), {}, "40.4831"),
    (("wan3.0-prime-reference-video",),
     {"input_seconds": 20, "output_seconds": -1, "quality": "480p"}, "176.868"),  # 45 u
    # wan3.0-reference-video: (4 + 6) × 4 = 40 × 2.55 = 102
    (("wan3.0-reference-video",), {}, "25.5"),
    (("wan3.0-reference-video",),
     {"input_seconds": 4, "output_seconds": 6, "quality": "1080p"}, "102"),
]
# fmt: on

FLAT = [(model_id, given, want) for ids, given, want in CASES for model_id in ids]


@pytest.fixture(scope="module")
def prices() -> PriceList:
    return PriceList.load()


@pytest.mark.parametrize(("model_id", "given", "want"), FLAT)
def test_hand_worked_price(
    prices: PriceList, model_id: str, given: dict[str, object], want: str
) -> None:
    quote = prices.model(model_id).quote(given)
    assert quote.credits == Decimal(want)
    assert quote.uc == int(Decimal(want) * 10_000)


def test_every_offered_video_model_has_a_hand_worked_price(prices: PriceList) -> None:
    covered = {model_id for model_id, _, _ in FLAT}
    assert {m.model_id for m in prices if m.offered} == covered
    assert len(covered) == 87
