using Microsoft.ML;
using Microsoft.ML.Data;

namespace MlNetTransfer.Training;

/// <summary>Feature vectors with labels as an ML.NET data view, with the vector size ML.NET trainers need to know.</summary>
internal static class FeatureTable
{
    public const string LabelColumn = "Label";
    public const string FeaturesColumn = Onnx.FeaturizerGraphBuilder.FeaturesTensor;

    public static IDataView Create(MLContext ml, IEnumerable<(string Label, float[] Features)> rows, int featureLength)
    {
        var schema = SchemaDefinition.Create(typeof(Row));
        // [1, n], as the saved model's ApplyOnnxModel step types the column: the head checks the type, dims included.
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, featureLength);
        return ml.Data.LoadFromEnumerable(rows.Select(r => new Row { Label = r.Label, Features = r.Features }).ToList(), schema);
    }

    /// <summary>Label -> key mapping with the key order fixed to <paramref name="classes"/> (the order of score vectors).</summary>
    public static IEstimator<ITransformer> MapLabelToKey(MLContext ml, IReadOnlyList<string> classes) =>
        ml.Transforms.Conversion.MapValueToKey(LabelColumn, LabelColumn,
            keyData: ml.Data.LoadFromEnumerable(classes.Select(c => new KeyRow { Label = c }).ToList()));

    private sealed class Row
    {
        public string Label { get; set; } = "";
        public float[] Features { get; set; } = [];
    }

    private sealed class KeyRow
    {
        public string Label { get; set; } = "";
    }
}
