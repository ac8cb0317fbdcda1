namespace MlNetTransfer.Inference;

/// <summary>The saved model's input: one image path (absolute, or relative to the working folder).</summary>
internal sealed class ModelInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>The saved model's output: the predicted class and one probability per class, in model class order.</summary>
internal class ModelOutput
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];

    /// <summary>The novelty score, for a model that outputs one (<see cref="ModelOutputWithNovelty"/>).</summary>
    [Microsoft.ML.Data.NoColumn]
    public virtual float? NoveltyScore => null;
}

/// <summary>The output of a model with a <c>Novelty</c> column (a one-value vector).</summary>
internal sealed class ModelOutputWithNovelty : ModelOutput
{
    public float[] Novelty { get; set; } = [];

    [Microsoft.ML.Data.NoColumn]
    public override float? NoveltyScore => Novelty.Length > 0 ? Novelty[0] : null;
}
