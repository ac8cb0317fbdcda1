namespace MlNetTransfer.Training;

/// <summary>The softmax head trained by ML.NET's L-BFGS maximum-entropy trainer (<see cref="HeadKind.LbfgsSoftmax"/>).</summary>
public sealed record LbfgsHeadOptions
{
    /// <summary>L2 weight. Null (default): chosen by k-fold cross-validation on the training images from <see cref="L2Grid"/>.</summary>
    public float? L2 { get; init; }

    /// <summary>L1 weight. Default 0: sparsity did not help on pooled CNN features.</summary>
    public float L1 { get; init; }

    /// <summary>Candidates for <see cref="L2"/>, about half a decade apart.</summary>
    public IReadOnlyList<float> L2Grid { get; init; } = [0.01f, 0.03f, 0.1f, 0.3f, 1f, 3f, 10f, 30f, 100f, 300f, 1000f];

    /// <summary>Folds of the cross-validation. Default 5.</summary>
    public int Folds { get; init; } = 5;
}

/// <summary>Mean cross-validated accuracy and log-loss of one L2 candidate.</summary>
public sealed record CrossValidationResult(float L2, double Accuracy, double LogLoss);
