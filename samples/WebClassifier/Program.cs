// A web app as a customer writes it: an ASP.NET Core minimal API serving a model zip that MlNetTransfer saved. The zip
// loads with the stock ML.NET packages alone (tests/StockConsumer proves it), but an upload is hostile input: the app
// predicts through MlNetTransfer.Hosting's ImageClassifierService (services.AddImageClassifier), so that each image
// meets the library's one reader, with the same limits as training (the header is checked before any pixel is
// decoded, truncation is caught, EXIF orientation is applied), and only as many images are decoded at once as there
// are engines. Uploads are read into memory (within the size limit) and predicted from there: nothing is written to
// disk. When the model file is replaced (train and retrain write a temp file and rename it over the old one), the new
// model serves new requests; requests in flight finish on the old one, which is then disposed.
//
//   dotnet run --project samples/WebClassifier -- --model model.zip --urls http://127.0.0.1:5080
//
//   POST /api/predict   multipart/form-data field "image" (or the raw image with an image/* content type)
//                       -> { "label", "probability", "scores": [{ "label", "score" }, ...] }, best first
//   GET  /api/info      -> { "model", "classes", "generation", "sha256" }
//   GET  /health        -> Healthy, Degraded (a replacement did not load; the old model serves) or Unhealthy
//   GET  /              -> a page to try it in a browser
using System.Reflection;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using MlNetTransfer.Hosting;
using MlNetTransfer.Inference;
using WebClassifier;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    // appsettings.json is read from beside the app, whatever the working folder.
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Configuration.AddCommandLine(args, new Dictionary<string, string> { ["--model"] = "ImageClassifier:ModelPath" });

// The model: --model <path>, else ImageClassifier:ModelPath (appsettings.json, or env ImageClassifier__ModelPath), else env MODEL_PATH.
var modelPath = builder.Configuration["ImageClassifier:ModelPath"] is { Length: > 0 } configured ? configured : Environment.GetEnvironmentVariable("MODEL_PATH");
if (string.IsNullOrWhiteSpace(modelPath))
{
    Console.Error.WriteLine("error: no model: pass --model <model.zip>, or set ImageClassifier:ModelPath in appsettings.json, or the environment variable MODEL_PATH.");
    return 2;
}
modelPath = Path.GetFullPath(modelPath);
builder.Configuration["ImageClassifier:ModelPath"] = modelPath;
if (!File.Exists(modelPath))
{
    Console.Error.WriteLine($"error: the model file '{modelPath}' does not exist.");
    return 2;
}

// Only this machine, unless told otherwise (--urls, ASPNETCORE_URLS).
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = Uploads.MaxRequestBytes);
builder.Services.Configure<FormOptions>(form =>
{
    form.MultipartBodyLengthLimit = Uploads.MaxRequestBytes;
    // ASP.NET Core buffers a form's files above 64 KB to temp files; here they stay in memory, within the limit above.
    form.MemoryBufferThreshold = (int)Uploads.MaxRequestBytes;
});

// Options from the ImageClassifier section (MaxEngines, ReloadOnChange, ReloadDelay); each engine decodes one image at a
// time, so MaxEngines also bounds the decodes at once; more requests wait.
builder.Services.AddImageClassifier(builder.Configuration.GetSection("ImageClassifier"));
builder.Services.AddHealthChecks().AddImageClassifier();

// The container disposes the classifier when the server stops (Ctrl+C, SIGTERM): ML.NET then deletes the ONNX files it
// unpacked to the temp folder.
await using var app = builder.Build();
try
{
    // Loads the model now: a file that is not a model stops the app here with one line, not at the first request.
    _ = app.Services.GetRequiredService<ImageClassifierService>().Model;
}
catch (Exception e)
{
    Console.Error.WriteLine($"error: cannot load the model '{modelPath}': {e.Message}");
    return 1;
}

// Anything unexpected: a JSON error and a log entry, never a stack trace to the client. A request that Kestrel
// found bad (a body cut short, too slow, too large) keeps Kestrel's client-error status instead of a 500.
app.UseExceptionHandler(new ExceptionHandlerOptions
{
    StatusCodeSelector = e => e is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError,
    ExceptionHandler = context => context.Response.WriteAsJsonAsync(new ErrorBody(
        context.Features.Get<IExceptionHandlerFeature>()?.Error is BadHttpRequestException
            ? Uploads.UnreadableBody
            : "The server failed to handle the request; see its log.")),
});

app.MapGet("/", () => Results.Content(Page.Html, "text/html; charset=utf-8"));

app.MapHealthChecks("/health");

app.MapGet("/api/info", (ImageClassifierService classifier) =>
{
    var model = classifier.Model;
    return new ModelInfo(Path.GetFileName(model.Path), model.Classes, model.Generation, model.Sha256);
});

app.MapPost("/api/predict", async (HttpRequest request, ImageClassifierService classifier, ILogger<Program> log, CancellationToken cancellationToken) =>
{
    try
    {
        var image = await Uploads.ReadImageAsync(request, cancellationToken);
        var prediction = await classifier.PredictAsync(image, "upload", cancellationToken);
        // Not the library's record as is: its Path is only the name given above.
        return Results.Ok(new PredictionBody(prediction.Label, prediction.Probability, prediction.Scores));
    }
    catch (BadUploadException e)
    {
        log.LogInformation("Rejected an upload ({Status}): {Reason}", e.StatusCode, e.Message);
        return Results.Json(new ErrorBody(e.Message), statusCode: e.StatusCode);
    }
    catch (ImageReadException e)
    {
        // The library's reader refused the image (a limit, corrupt or truncated data): its reason, as one sentence.
        var sentence = $"The image was refused: {e.Reason.TrimEnd('.')}.";
        log.LogInformation("Rejected an upload: {Reason}", sentence);
        return Results.BadRequest(new ErrorBody(sentence));
    }
});

await app.RunAsync();
return 0;

public sealed record ErrorBody(string Error);

/// <summary>What the API answers: the best label, its probability, and every class's score, best first.</summary>
public sealed record PredictionBody(string Label, float Probability, IReadOnlyList<LabelScore> Scores);

/// <summary>The model serving now: its file name, classes, generation (1 at start, one more per reload) and SHA-256.</summary>
public sealed record ModelInfo(string Model, IReadOnlyList<string> Classes, int Generation, string Sha256);

/// <summary>The test page, embedded in the assembly (index.html).</summary>
internal static class Page
{
    public static string Html { get; } = Load();

    private static string Load()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("index.html")
            ?? throw new InvalidOperationException("index.html is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
