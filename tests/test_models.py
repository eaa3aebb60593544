import numpy as np
import pytest
import torch
from PIL import Image

from maskwatch.errors import MaskwatchError
from maskwatch.models import create_model, get_spec, list_models
from maskwatch.train.augment import eval_transform

STUDY_NETS = {
    "cnn",
    "inception_mini",
    "resnet50",
    "densenet121",
    "mobilenetv2",
    "xception",
    "inceptionv3",
    "efficientnet_lite0",
}


def test_registry_has_the_study_networks_and_the_default():
    assert set(list_models()) >= STUDY_NETS
    assert get_spec("inceptionv3").input_size == 299
    assert get_spec("efficientnet_lite0").pretrained_source.startswith("package")


@pytest.mark.parametrize("name", sorted(STUDY_NETS))
def test_forward_pass_and_backbone_head_split(name):
    size = {"cnn": 64, "inceptionv3": 96, "xception": 96}.get(name, 64)
    model = create_model(name, 3, input_size=size).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        logits = model(x)
        feats = model.backbone(x)
    assert logits.shape == (2, 3)
    assert feats.shape == (2, model.num_features)
    assert torch.allclose(model.head(feats), logits, atol=1e-5)
    assert model.pretrained is None


def test_study_cnn_layers():
    model = create_model("cnn", 2, input_size=128)
    convs = [m for m in model.backbone if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in model.backbone if isinstance(m, torch.nn.MaxPool2d)]
    assert [c.out_channels for c in convs] == [32, 64] and len(pools) == 3
    dense = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [d.out_features for d in dense] == [128, 64, 2]
    assert [m.p for m in model.head if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]


def test_efficientnet_lite0_imagenet_weights_load_offline_and_see_a_cat():
    import timm
    from skimage import data as skdata

    from maskwatch.models.weights import efficientnet_lite_state_dict

    net = timm.create_model("efficientnet_lite0", pretrained=False)
    net.load_state_dict(efficientnet_lite_state_dict(0))
    net.eval()
    spec = get_spec("efficientnet_lite0")
    cat = Image.fromarray(skdata.chelsea())  # scikit-image's public-domain photo of a tabby cat
    x = eval_transform(224, spec.mean, spec.std)(cat)[None]
    with torch.no_grad():
        top5 = net(x).softmax(1)[0].topk(5).indices.tolist()
    assert set(top5[:2]) <= {281, 282, 283, 284, 285, 287}  # ImageNet's domestic cats (and lynx)
    # and the registry's model gets exactly these backbone weights
    model = create_model("efficientnet_lite0", 2, pretrained=True)
    assert model.pretrained.startswith("package")
    assert torch.equal(model.backbone.conv_stem.weight, net.conv_stem.weight)


def test_hub_weights_offline_fail_in_one_line(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    import maskwatch.models.weights as w

    monkeypatch.setattr(w, "hub_reachable", lambda *a, **k: False)
    # an empty hub cache: huggingface_hub reads HF_HOME once, when timm first imports it, so the constant is set
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # load_pretrained sets both: monkeypatch puts them back afterwards
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(MaskwatchError) as err:
        create_model("mobilenetv2", 2, pretrained=True)
    assert "--no-pretrained" in str(err.value) and "\n" not in str(err.value)


def test_study_nets_ignore_pretrained():
    assert create_model("cnn", 2, pretrained=True).pretrained is None


def test_weights_file_round_trip_and_wrong_architecture(tmp_path):
    a = create_model("mobilenetv2", 2, input_size=64)
    torch.save(a.backbone.state_dict(), tmp_path / "mnv2.pth")
    b = create_model("mobilenetv2", 2, weights=str(tmp_path / "mnv2.pth"))
    assert b.pretrained == f"file: {tmp_path / 'mnv2.pth'}"
    for k, v in a.backbone.state_dict().items():
        assert torch.equal(v, b.backbone.state_dict()[k])
    with pytest.raises(MaskwatchError, match="another architecture"):
        create_model("densenet121", 2, weights=str(tmp_path / "mnv2.pth"))
    with pytest.raises(MaskwatchError, match="not found"):
        create_model("densenet121", 2, weights=str(tmp_path / "missing.pth"))


def test_unknown_model_lists_known_ones():
    with pytest.raises(MaskwatchError, match="efficientnet_lite0"):
        create_model("vgg99", 2)


def test_eval_transform_shape_and_normalisation():
    spec = get_spec("efficientnet_lite0")
    img = Image.fromarray(np.full((30, 50, 3), 255, dtype=np.uint8))
    x = eval_transform(64, spec.mean, spec.std)(img)
    assert x.shape == (3, 64, 64)
    assert torch.allclose(x, torch.ones_like(x))  # (1 - 0.5) / 0.5
