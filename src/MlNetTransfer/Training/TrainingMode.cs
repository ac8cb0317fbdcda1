namespace MlNetTransfer.Training;

/// <summary>How much of the conv base trains.</summary>
public enum TrainingMode
{
    /// <summary>The whole conv base stays frozen; only a new head trains on its pooled features. Default.</summary>
    FeatureExtraction,

    /// <summary>
    /// The top block(s) of the conv base (<see cref="FineTuningOptions.Unfreeze"/>) train with the head at a low learning rate,
    /// in TorchSharp (package MlNetTransfer.TorchSharp); the tuned weights go back into the ONNX graph.
    /// </summary>
    FineTuning,

    /// <summary>
    /// The tool chooses: candidates from cheap to dear (<see cref="ModeSearchOptions.Candidates"/>) are fit on the same
    /// images and scored on images no reported figure is taken from; a dearer one is kept only when it is better beyond the
    /// noise of that comparison. The winner is then finished (refit on every training image) as its fixed mode would be.
    /// </summary>
    Auto,
}

/// <summary>The head put on the pooled conv-base features, named by what trains it.</summary>
public enum HeadKind
{
    /// <summary>
    /// One softmax layer trained by ML.NET's L-BFGS maximum-entropy trainer, its L2 weight chosen by cross-validation
    /// (<see cref="LbfgsHeadOptions"/>). Feature extraction only; its default there. Needs nothing beyond ML.NET.
    /// </summary>
    LbfgsSoftmax,

    /// <summary>
    /// One softmax layer trained in TorchSharp with mini-batches of augmented views (<see cref="FineTuningOptions"/>).
    /// The default when fine-tuning.
    /// </summary>
    TorchSharpSoftmax,

    /// <summary>Dense(256, relu) -> Dropout(0.5) -> softmax, trained in TorchSharp like <see cref="TorchSharpSoftmax"/>.</summary>
    TorchSharpMlp,
}
