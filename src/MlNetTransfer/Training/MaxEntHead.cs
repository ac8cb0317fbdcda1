using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace MlNetTransfer.Training;

/// <summary>
/// A softmax layer as ML.NET's own maximum-entropy head (what LbfgsMaximumEntropy produces), so that a head trained
/// elsewhere (TorchSharp) is saved as a stock ML.NET model part: Score with class slot names, PredictedLabel as a key.
/// ML.NET builds these only from its trainer, so the (internal) constructors are reached by reflection; the parity
/// tests fail loudly if a future ML.NET changes them.
/// </summary>
internal static class MaxEntHead
{
    /// <summary>The prediction transformer for softmax(W x + b) over a <c>Features</c> column of [1, inputs].</summary>
    public static ITransformer Create(MLContext ml, float[][] weights, float[] biases, IReadOnlyList<string> classes)
    {
        if (weights.Length != classes.Count || biases.Length != classes.Count)
            throw new ArgumentException($"{weights.Length} weight rows and {biases.Length} biases for {classes.Count} classes");
        int inputs = weights[0].Length;
        var env = (IHostEnvironment)ml;
        var rows = weights.Select(w => new VBuffer<float>(inputs, w.ToArray())).ToArray();
        var parametersCtor = typeof(MaximumEntropyModelParameters).GetConstructor(BindingFlags.Instance | BindingFlags.NonPublic, null,
            [typeof(IHostEnvironment), typeof(VBuffer<float>[]), typeof(float[]), typeof(int), typeof(int), typeof(string[]), typeof(ModelStatisticsBase)], null)
            ?? throw new MissingMethodException("This ML.NET version has no MaximumEntropyModelParameters(env, weights, biases, ...) constructor.");
        var parameters = (MaximumEntropyModelParameters)parametersCtor.Invoke([env, rows, biases.ToArray(), classes.Count, inputs, classes.ToArray(), null]);

        // The transformer takes label names (for PredictedLabel's key values) from a schema with the keyed label column.
        var data = FeatureTable.Create(ml, [(classes[0], new float[inputs])], inputs);
        var keyed = FeatureTable.MapLabelToKey(ml, classes).Fit(data).Transform(data);
        var transformerCtor = typeof(MulticlassPredictionTransformer<MaximumEntropyModelParameters>).GetConstructor(BindingFlags.Instance | BindingFlags.NonPublic, null,
            [typeof(IHostEnvironment), typeof(MaximumEntropyModelParameters), typeof(DataViewSchema), typeof(string), typeof(string), typeof(string), typeof(string)], null)
            ?? throw new MissingMethodException("This ML.NET version has no MulticlassPredictionTransformer(env, model, schema, ...) constructor.");
        return (ITransformer)transformerCtor.Invoke([env, parameters, keyed.Schema, FeatureTable.FeaturesColumn, FeatureTable.LabelColumn, "Score", "PredictedLabel"]);
    }

    /// <summary>The softmax layer of a saved model's head (public ML.NET API): weights [classes][inputs] and biases.</summary>
    public static (float[][] Weights, float[] Biases)? Read(ITransformer model)
    {
        var predictor = Flatten(model).OfType<MulticlassPredictionTransformer<MaximumEntropyModelParameters>>().FirstOrDefault();
        if (predictor is null)
            return null;
        VBuffer<float>[] weights = [];
        predictor.Model.GetWeights(ref weights, out int classes);
        return (weights.Take(classes).Select(w => w.DenseValues().ToArray()).ToArray(), predictor.Model.GetBiases().ToArray());
    }

    /// <summary>Weights divided by a temperature (a copy; the same array when it is 1).</summary>
    public static float[][] Scale(float[][] weights, double temperature) =>
        temperature == 1 ? weights : weights.Select(row => Scale(row, temperature)).ToArray();

    /// <inheritdoc cref="Scale(float[][], double)"/>
    public static float[] Scale(float[] values, double temperature) =>
        temperature == 1 ? values : values.Select(v => (float)(v / temperature)).ToArray();

    private static IEnumerable<ITransformer> Flatten(ITransformer t) =>
        t is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [t];
}
