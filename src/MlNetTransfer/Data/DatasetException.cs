namespace MlNetTransfer.Data;

/// <summary>The data cannot be trained on: no images, one class, too few images in a class, an unreadable folder or manifest row.</summary>
public sealed class DatasetException(string message, Exception? inner = null) : Exception(message, inner);
