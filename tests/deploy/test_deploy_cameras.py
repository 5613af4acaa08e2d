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
