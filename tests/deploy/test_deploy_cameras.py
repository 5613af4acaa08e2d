import time

import numpy as np
import pytest

from deploy.cameras import CameraError, OpenCVCamera, SimCamera, ZedCamera, make_camera
from deploy.images import bgr_to_rgb, letterbox, preprocess


def test_bgra_to_rgb_drops_alpha_and_reverses_channels():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 255
    rgb = bgr_to_rgb(bgra)
    assert rgb.shape == (2, 3, 3) and rgb[0, 0].tolist() == [30, 20, 10]
    with pytest.raises(ValueError):
        bgr_to_rgb(np.zeros((4, 4), np.uint8))


def test_letterbox_720p_keeps_aspect_and_pads_evenly():
    img = np.full((720, 1280, 3), 200, np.uint8)
    out = letterbox(img, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    rows = np.where(out[:, 112, 0] > 0)[0]
    assert len(rows) == 126 and rows[0] == 49  # 1280x720 -> 224x126, (224-126)//2 = 49 rows of padding
    assert np.all(out[:49] == 0) and np.all(out[49 + 126 :] == 0)
    assert letterbox(np.zeros((100, 50, 3), np.uint8), 224)[:, :56].max() == 0  # portrait pads the sides


def test_sim_camera_frames_change_and_preprocess_to_policy_input():
    cam = make_camera("ext", "sim", height=180, width=320, channels=4)
    a, b = cam.read(), cam.read()
    assert a.shape == (180, 320, 4) and not np.array_equal(a, b)
    x = preprocess(a)
    assert x.shape == (224, 224, 3) and x.dtype == np.uint8


def test_missing_devices_give_actionable_errors():
    with pytest.raises(CameraError, match="cannot open OpenCV device"):
        OpenCVCamera("wrist", device="/nonexistent/video99")
    with pytest.raises(CameraError, match="pyzed"):
        ZedCamera("ext", serial=123)
    with pytest.raises(ValueError, match="unknown camera kind"):
        make_camera("x", "kinect")
    assert isinstance(make_camera("x", "sim"), SimCamera)


# ---------------------------------------------------------------- a real video file (issue 15)
FPS = 15.0
N_FRAMES = 20


def _scene(k: int, h: int = 720, w: int = 1280) -> np.ndarray:
    """BGR frame k: smooth gradients, a pure red square (BGR (0, 0, 255)) and a white marker at column 50 k."""
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 255 // (w + h))], -1).astype(np.uint8)
    frame[100:260, 100:260] = (0, 0, 255)
    frame[400:480, 50 * k : 50 * k + 40] = 255
    return frame


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("video") / "exterior.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (1280, 720))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for k in range(N_FRAMES):
        writer.write(_scene(k))
    writer.release()
    return path


def test_opencv_camera_reads_every_frame_in_order_with_timestamps_then_end_of_file(video):
    cam = OpenCVCamera("exterior", device=str(video))
    assert cam.is_file and cam.fps == pytest.approx(FPS)
    for k in range(N_FRAMES):
        frame = cam.read()
        assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
        marker = frame[420:460].min(axis=2).mean(axis=0) > 230  # white columns of the marker
        cols = np.flatnonzero(marker)
        assert abs(cols.min() - 50 * k) <= 2 and abs(cols.max() - (50 * k + 39)) <= 2, (
            f"frame {k} out of order"
        )
        assert cam.timestamp_s == pytest.approx(k / FPS, abs=1e-3)
        np.testing.assert_allclose(frame[150:200, 150:200].mean(axis=(0, 1)), [0, 0, 255], atol=6)  # BGR red
    with pytest.raises(CameraError, match=f"end of video file .* after {N_FRAMES} frames"):
        cam.read()
    cam.close()


def test_opencv_camera_realtime_paces_a_file_at_its_frame_rate(video):
    cam = OpenCVCamera("exterior", device=str(video), realtime=True)
    t0 = time.monotonic()
    arrivals = []
    for _ in range(10):
        cam.read()
        arrivals.append(time.monotonic() - t0)
    cam.close()
    periods = np.diff(arrivals)
    assert np.median(periods) == pytest.approx(1 / FPS, abs=0.01)
    assert arrivals[-1] == pytest.approx(9 / FPS, abs=0.05)


def _reference_letterbox(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """openpi's client-side resize_with_pad, written independently: PIL bilinear to fit, zero padding."""
    from PIL import Image

    h, w = rgb.shape[:2]
    ratio = max(w / size, h / size)
    nh, nw = int(h / ratio), int(w / ratio)
    small = np.asarray(Image.fromarray(rgb).resize((nw, nh), resample=Image.BILINEAR))
    out = np.zeros((size, size, 3), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = small
    return out


@pytest.mark.parametrize("shape", [(720, 1280), (480, 640)])
def test_camera_frame_to_policy_input_matches_a_reference_resize(tmp_path, shape):
    import cv2

    h, w = shape
    path = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    writer.write(cv2.resize(_scene(3), (w, h), interpolation=cv2.INTER_AREA))
    writer.release()
    cam = OpenCVCamera("exterior", device=str(path))
    frame = cam.read()  # what the camera delivers (after compression)
    cam.close()
    x = preprocess(frame, 224)  # what the robot loop puts in the policy batch
    ref = _reference_letterbox(frame[..., ::-1].copy(), 224)
    assert x.shape == (224, 224, 3) and x.dtype == np.uint8
    assert np.array_equal(x.max(axis=(1, 2)) > 0, ref.max(axis=(1, 2)) > 0)  # the same padding rows
    diff = np.abs(x.astype(int) - ref.astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 12, (diff.mean(), np.percentile(diff, 99))
    # colour order: the red square is red (RGB) at the scaled position in the policy input
    s = 224 / w
    top = (224 - round(h * s)) // 2
    cy, cx = int(180 * h / 720 * s) + top, int(180 * w / 1280 * s)
    np.testing.assert_allclose(x[cy - 2 : cy + 3, cx - 2 : cx + 3].mean(axis=(0, 1)), [255, 0, 0], atol=8)
