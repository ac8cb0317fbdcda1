namespace MlNetTransfer.Inference;

/// <summary>The saved model's input: one image path (absolute, or relative to the working folder).</summary>
internal sealed class ModelInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>The saved model's output: the predicted class and one probability per class, in model class order.</summary>
internal sealed class ModelOutput
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}
