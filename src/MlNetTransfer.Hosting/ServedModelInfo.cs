namespace MlNetTransfer.Hosting;

/// <summary>The model <see cref="ImageClassifierService"/> serves now.</summary>
/// <param name="Path">The model zip's full path.</param>
/// <param name="Generation">1 for the model loaded at start, one more for each reload.</param>
/// <param name="Sha256">The SHA-256 of the file as loaded (lower-case hex): the same as <c>info</c> and a retrained model's lineage show.</param>
/// <param name="LoadedUtc">When it was loaded.</param>
/// <param name="Classes">Its class names in score order.</param>
public sealed record ServedModelInfo(string Path, int Generation, string Sha256, DateTimeOffset LoadedUtc, IReadOnlyList<string> Classes);
