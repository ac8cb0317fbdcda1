using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Featurization;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>How the range of an activation tensor is chosen from what calibration saw.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen (ONNX Runtime's MinMax calibrator).</summary>
    MinMax,

    /// <summary>The range is clipped at a percentile of the values seen at each end (the rest saturates).</summary>
    Percentile,
}

/// <summary>The range seen for one activation tensor over the calibration images.</summary>
/// <param name="Min">Smallest value seen.</param>
/// <param name="Max">Largest value seen.</param>
/// <param name="ClippedMin">Lower end after percentile clipping (= Min for MinMax).</param>
/// <param name="ClippedMax">Upper end after percentile clipping (= Max for MinMax).</param>
internal sealed record TensorRange(float Min, float Max, float ClippedMin, float ClippedMax);

/// <summary>
/// Runs the fp32 graph in ONNX Runtime with the tensors to be quantized added as graph outputs and keeps, per tensor,
/// a running min/max and (for <see cref="CalibrationMethod.Percentile"/>) a fixed-size histogram (4096 bins). Batches are
/// streamed: only one batch of pixels and its activations is held at a time (for resnet18 at 224×224, about 15 MB of
/// activations per image of the batch), whatever the number of calibration images.
/// </summary>
internal static class ActivationCalibration
{
    /// <param name="model">fp32 model (not modified).</param>
    /// <param name="inputName">Its pixel input, [n, 3, height, width].</param>
    /// <param name="tensors">Float tensors to calibrate.</param>
    /// <param name="batches">Pixel batches, each n·3·height·width floats; read until <paramref name="maxImages"/> images.</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="maxImages">Images to use at most (a batch that crosses the limit is cut).</param>
    /// <param name="method">Range choice.</param>
    /// <param name="percentile">For <see cref="CalibrationMethod.Percentile"/>: the share of values (in %) kept inside the range at each end.</param>
    /// <param name="threads">ORT intra-op threads; null = all cores.</param>
    /// <param name="imagesSeen">How many images were used.</param>
    public static IReadOnlyDictionary<string, TensorRange> Collect(ModelProto model, string inputName, IReadOnlyList<string> tensors,
        IEnumerable<float[]> batches, int height, int width, int maxImages, CalibrationMethod method, double percentile, int? threads,
        out int imagesSeen)
    {
        if (tensors.Count == 0)
        {
            imagesSeen = 0;
            return new Dictionary<string, TensorRange>();
        }
        var probe = model.Clone();
        probe.Graph.Output.Clear();
        foreach (var name in tensors)
            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        OnnxGraph.PruneTo(probe.Graph, tensors.ToList());

        var stats = tensors.Select(_ => new RunningStats(method == CalibrationMethod.Percentile)).ToArray();
        int pixelsPerImage = 3 * height * width;
        int seen = 0;
        using (var session = OrtSessions.Create(probe.ToByteArray(), threads))
        {
            var outputNames = tensors.ToArray();
            foreach (var batch in batches)
            {
                if (batch.Length == 0 || batch.Length % pixelsPerImage != 0)
                    throw new ArgumentException($"a calibration batch holds {batch.Length} floats, not a whole number of [3, {height}, {width}] images", nameof(batches));
                int n = Math.Min(batch.Length / pixelsPerImage, maxImages - seen);
                using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.AsMemory(0, n * pixelsPerImage), [n, 3, height, width]);
                using var runOptions = new RunOptions();
                using var outputs = session.Run(runOptions, [inputName], [input], outputNames);
                for (int t = 0; t < outputNames.Length; t++)
                    stats[t].Add(outputs[t].GetTensorDataAsSpan<float>());
                seen += n;
                if (seen >= maxImages)
                    break; // before asking for another batch: a lazy source makes no more than needed
            }
        }
        if (seen == 0)
            throw new ArgumentException("no calibration images were given", nameof(batches));
        imagesSeen = seen;

        var ranges = new Dictionary<string, TensorRange>(StringComparer.Ordinal);
        for (int t = 0; t < tensors.Count; t++)
            ranges[tensors[t]] = stats[t].Range(method == CalibrationMethod.Percentile ? percentile : 100.0);
        return ranges;
    }

    /// <summary>
    /// Running min/max and a histogram of 2·<see cref="Half"/> bins of width w around 0 (bin k holds [(k − Half)·w, (k − Half + 1)·w)).
    /// When a value falls outside, w doubles and bins merge in pairs, which is exact because 0 stays on a bin edge.
    /// </summary>
    private sealed class RunningStats(bool histogram)
    {
        private const int Half = 2048;
        private readonly long[]? _bins = histogram ? new long[2 * Half] : null;
        private float _min = float.PositiveInfinity, _max = float.NegativeInfinity;
        private double _width; // 0 until a non-zero value is seen
        private long _count;

        public void Add(ReadOnlySpan<float> values)
        {
            if (values.IsEmpty)
                return;
            float min = System.Numerics.Tensors.TensorPrimitives.Min(values);
            float max = System.Numerics.Tensors.TensorPrimitives.Max(values);
            if (float.IsNaN(min) || float.IsNaN(max))
                throw new InvalidOperationException("calibration produced NaN activations");
            _min = Math.Min(_min, min);
            _max = Math.Max(_max, max);
            _count += values.Length;
            if (_bins is null)
                return;

            double absMax = Math.Max(Math.Abs((double)min), Math.Abs((double)max));
            if (absMax > 0 && _width == 0)
                _width = Math.Pow(2, Math.Ceiling(Math.Log2(absMax / Half)));
            while (_width > 0 && absMax >= Half * _width)
                Widen();
            if (_width == 0)
            {
                _bins[Half] += values.Length; // all zeros so far
                return;
            }
            double inverse = 1.0 / _width;
            foreach (var v in values)
                _bins[Math.Clamp((int)Math.Floor(v * inverse) + Half, 0, 2 * Half - 1)]++;
        }

        private void Widen()
        {
            var merged = new long[_bins!.Length];
            for (int k = 0; k < _bins.Length; k++)
            {
                // Signed bin j = k − Half goes to floor(j / 2).
                int j = k - Half;
                merged[(j >> 1) + Half] += _bins[k];
            }
            Array.Copy(merged, _bins, merged.Length);
            _width *= 2;
        }

        public TensorRange Range(double percentile)
        {
            if (_bins is null || _width == 0 || percentile >= 100.0)
                return new TensorRange(_min, _max, _min, _max);
            long tail = (long)Math.Floor(_count * (100.0 - percentile) / 100.0);
            // Upper end: the upper edge of the bin where the values above it drop to the allowed tail.
            long above = 0;
            int top = _bins.Length - 1;
            while (top > 0 && above + _bins[top] <= tail)
                above += _bins[top--];
            long below = 0;
            int bottom = 0;
            while (bottom < _bins.Length - 1 && below + _bins[bottom] <= tail)
                below += _bins[bottom++];
            float hi = (float)((top - Half + 1) * _width);
            float lo = (float)((bottom - Half) * _width);
            return new TensorRange(_min, _max, Math.Max(_min, lo), Math.Min(_max, hi));
        }
    }
}
