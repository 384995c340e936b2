"""scripts/export_model.py: a symbol pair and ONNX that run without this project, with the preprocessing they need."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test_evaluation import REPO, train_checkpoint

pytestmark = pytest.mark.slow

# Run in an isolated interpreter (-I: no script folder, PYTHONPATH or user site on sys.path) from the export
# folder, so neither this project nor gluoncv can be imported unless something asks for them.
CONSUMER = r'''
import json, sys
import numpy as np
import mxnet as mx
import onnxruntime

spec = json.load(open('vgg16_ucf101-preprocess.json'))
frames = np.load('frames.npy')                                    # uint8 (clips, segments, H, W, 3) RGB
x = (frames.astype(np.float32) * spec['pixel_scale'] - np.array(spec['mean'], np.float32)) / np.array(spec['std'],
                                                                                                         np.float32)
x = x.transpose(0, 1, 4, 2, 3).reshape((-1, 3, spec['size'], spec['size'])).astype(np.float32)
net = mx.gluon.SymbolBlock.imports('vgg16_ucf101-symbol.json', [spec['input_name']], 'vgg16_ucf101-0000.params')
symbol_out = net(mx.nd.array(x)).asnumpy()
session = onnxruntime.InferenceSession('vgg16_ucf101.onnx', providers=['CPUExecutionProvider'])
onnx_out = session.run(None, {spec['input_name']: x})[0]
print(json.dumps({'symbol': symbol_out.tolist(), 'onnx': onnx_out.tolist(),
                  'imported': sorted(m for m in sys.modules if m.split('.')[0] in ('recognizer', 'gluoncv'))}))
'''


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.getbasetemp())


def export(args):
    return subprocess.run([sys.executable, 'scripts/export_model.py'] + [str(a) for a in args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def exported(checkpoint, tmp_path_factory):
    root, params = checkpoint
    out = tmp_path_factory.mktemp('exported')
    done = export(['--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm', '--resume-params', params,
                   '--input-size', '32', '--num-segments', '3', '--save-dir', out, '--onnx',
                   '--class-index', os.path.join(root, 'syn', 'ucfTrainTestlist', 'classInd.txt')])
    assert done.returncode == 0, done.stderr
    return out


def held_out_views(root, opt):
    """uint8 centre crops (clips, 3 segments, 32, 32, 3) of two held-out clips, and their FP32 view logits."""
    import mxnet as mx
    from recognizer import data, evaluation
    clips = data.read_clip_list(os.path.join(root, 'syn', 'ucfTrainTestlist', 'ucf101_val_split_1_rawframes.txt'),
                                os.path.join(root, 'syn', 'rawframes'), 4)[1:3]
    dataset = evaluation.ViewDataset(clips, opt)
    views = np.stack([dataset.load(i, None)[:, 0] for i in range(len(clips))])
    predictor = evaluation.Predictor(evaluation.load_network(opt, [mx.cpu()]), [mx.cpu()], opt)
    return views, np.stack([predictor.view_logits(v[:, None]) for v in views])


def test_files_are_named_and_the_preprocessing_is_written(exported):
    assert sorted(os.listdir(exported)) == ['vgg16_ucf101-0000.params', 'vgg16_ucf101-preprocess.json',
                                            'vgg16_ucf101-symbol.json', 'vgg16_ucf101.onnx']
    with open(exported / 'vgg16_ucf101-preprocess.json') as f:
        spec = json.load(f)
    assert spec['input_shape_per_clip'] == [3, 3, 32, 32] and spec['input_layout'] == 'NCHW'
    assert spec['num_segments'] == 3 and spec['size'] == 32 and spec['channel_order'] == 'RGB'
    assert spec['pixel_scale'] == pytest.approx(1 / 255.0)
    assert spec['mean'] == pytest.approx([0.485, 0.456, 0.406]) and spec['std'] == pytest.approx([0.229, 0.224, 0.225])
    assert spec['class_names'] == ['Class00', 'Class01', 'Class02', 'Class03']
    import onnx
    model = onnx.load(str(exported / 'vgg16_ucf101.onnx'))
    assert [o.version for o in model.opset_import if o.domain == ''] == [13]
    assert [i.name for i in model.graph.input] == ['data']              # weights are constants, not inputs


def test_a_process_without_this_project_gets_the_network_outputs_from_symbol_and_onnx(checkpoint, exported):
    from types import SimpleNamespace
    root, params = checkpoint
    opt = SimpleNamespace(model='vgg16_ucf101', num_classes=4, batch_norm=True, resume_params=params,
                          use_pretrained=False, hashtag='', use_tsn=False, dtype='float32', mode=None, input_size=32,
                          num_segments=3, num_crop=1, new_length=1, new_step=1, new_width=0, new_height=0,
                          video_loader=False, input_5d=False, views_per_pass=50, score_average='softmax',
                          slowfast=False, fast_temporal_stride=2, slow_temporal_stride=16)
    frames, view_logits = held_out_views(root, opt)
    np.save(exported / 'frames.npy', frames)
    done = subprocess.run([sys.executable, '-I', '-c', CONSUMER], cwd=str(exported), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result['imported'] == []
    expected = view_logits.mean(axis=1)              # the TSN average of the 3 segments' logits, per clip
    symbol, onnx_out = np.array(result['symbol']), np.array(result['onnx'])
    assert symbol.shape == onnx_out.shape == (2, 4)
    assert np.abs(symbol - expected).max() < 1e-4
    assert np.abs(onnx_out - symbol).max() < 1e-4
    assert list(np.argmax(onnx_out, axis=1)) == [1, 2]                  # held-out clips of Class01 and Class02


def test_get_fps_times_the_onnx_file(exported):
    done = subprocess.run([sys.executable, 'scripts/get_fps.py', '--model', 'vgg16_ucf101', '--num-classes', '4',
                           '--input-size', '32', '--num-segments', '3', '--batch-size', '2', '--num-runs', '3',
                           '--num-warmup-runs', '1', '--onnx', str(exported / 'vgg16_ucf101.onnx')],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert 'ONNX Runtime, input (6, 3, 32, 32): 3 runs after 1 warm-up' in lines[-2]
    assert lines[-1].startswith('clips/s: ') and float(lines[-1].split()[1]) > 0


def test_a_network_onnx_cannot_express_is_refused_naming_the_operator(tmp_path):
    import mxnet as mx
    data = mx.sym.var('data')
    sym = mx.sym.Correlation(data1=data, data2=data, kernel_size=1, max_displacement=1, name='corr')
    sym.save(str(tmp_path / 'flow-symbol.json'))
    mx.nd.save(str(tmp_path / 'flow-0000.params'), {})
    done = export(['--model', 'vgg16_ucf101', '--num-classes', '4', '--input-size', '32', '--save-dir',
                   tmp_path / 'out', '--onnx', '--model-prefix', tmp_path / 'flow'])
    assert done.returncode == 2 and done.stderr.count('\n') == 1
    assert 'ONNX cannot express this network: MXNet operator Correlation has no ONNX conversion' in done.stderr
    assert not os.path.exists(tmp_path / 'out' / 'vgg16_ucf101.onnx')


def test_nothing_to_export_is_a_user_error(tmp_path):
    done = export(['--model', 'vgg16_ucf101', '--save-dir', tmp_path / 'out'])
    assert done.returncode == 2 and 'nothing to export: pass --resume-params' in done.stderr
    assert not os.path.exists(tmp_path / 'out')


def test_a_single_view_export_is_evaluated_by_test_recognizer_and_a_tsn_one_is_refused(checkpoint, exported, tmp_path):
    from test_evaluation import eval_args, read_csv, run_script
    root, params = checkpoint
    done = export(['--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm', '--resume-params', params,
                   '--input-size', '32', '--save-dir', tmp_path / 'single'])
    assert done.returncode == 0, done.stderr
    fp32 = run_script(eval_args(root, params, tmp_path / 'fp32', '--num-segments', '5'))
    deployed = run_script(eval_args(root, params, tmp_path / 'deployed', '--num-segments', '5', '--deploy',
                                    '--model-prefix', tmp_path / 'single' / 'vgg16_ucf101'))
    assert fp32.returncode == 0 and deployed.returncode == 0, deployed.stderr
    rows = [read_csv(tmp_path / name / 'predictions.csv') for name in ('fp32', 'deployed')]
    assert [r['predicted'] for r in rows[0]] == [r['predicted'] for r in rows[1]] and len(rows[0]) == 4
    refused = run_script(eval_args(root, params, tmp_path / 'tsn', '--deploy', '--model-prefix',
                                   exported / 'vgg16_ucf101'))
    assert refused.returncode == 2 and 'export it with --num-segments 1' in refused.stderr
