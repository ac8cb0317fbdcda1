namespace MlNetTransfer.Inference;

/// <summary>A model file is missing, not a zip, truncated, or not a model this tool can use.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);
