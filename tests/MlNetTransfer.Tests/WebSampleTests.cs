using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// The web sample (samples/WebClassifier: ASP.NET Core + the library's ImageClassifierPool) serving a model this library trained,
/// run as its own process and used over HTTP and from its page in headless Chromium.
/// </summary>
public sealed class WebSampleTests : IClassFixture<WebSampleTests.ServedModel>
{
    private static readonly TimeSpan BrowserTimeout = TimeSpan.FromSeconds(30);

    private readonly ServedModel _served;

    public WebSampleTests(ServedModel served) => _served = served;

    /// <summary>A small model, trained once, the library's own answers for its test images, and the sample serving it.</summary>
    public sealed class ServedModel : IDisposable
    {
        public TestData.TempFolder Temp { get; } = new();
        public string ZipPath { get; }
        public IReadOnlyList<string> Classes { get; }

        /// <summary>The Fashion test images the model was evaluated on, with what ImageClassifier predicts for each.</summary>
        public IReadOnlyDictionary<string, ImagePrediction> Expected { get; }

        public WebSampleProcess Server { get; }
        public HttpClient Http { get; }

        public ServedModel()
        {
            try
            {
                ZipPath = Temp.File("model.zip");
                List<string> images;
                using (var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { Folds = 3 } }).Train(TestData.FashionSubset(3, 6, 3)))
                {
                    trained.Save(ZipPath);
                    images = trained.Reports[0].Images.Select(i => i.Path).ToList();
                }
                using (var classifier = ImageClassifier.Load(ZipPath))
                {
                    Classes = classifier.Classes;
                    Expected = images.ToDictionary(i => i, classifier.Predict);
                }
                Server = WebSampleProcess.Start(ZipPath);
                Http = new HttpClient { BaseAddress = Server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public IReadOnlyList<string> TestImages => Expected.Keys.ToList();

        public void Dispose()
        {
            Http?.Dispose();
            Server?.Dispose();
            Temp.Dispose();
        }
    }

    [Fact]
    public async Task ServesHealthInfoAndAPageWithoutExternalResources()
    {
        Assert.Equal("Healthy", await _served.Http.GetStringAsync("health"));

        using var info = JsonDocument.Parse(await _served.Http.GetStringAsync("api/info"));
        Assert.Equal("model.zip", info.RootElement.GetProperty("model").GetString());
        Assert.Equal(_served.Classes, info.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!));
        Assert.Equal(1, info.RootElement.GetProperty("generation").GetInt32());
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(_served.ZipPath))),
            info.RootElement.GetProperty("sha256").GetString());

        using var page = await _served.Http.GetAsync("");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        foreach (var id in new[] { "file", "predict", "preview", "label", "probability", "scores", "error" })
            Assert.Contains($"id=\"{id}\"", html);
        Assert.Contains("/api/predict", html);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("<script src", html);
    }

    [Fact]
    public async Task PredictsWhatTheLibraryPredicts()
    {
        foreach (var (image, expected) in _served.Expected)
        {
            var answer = await PostFormAsync(image);
            AssertSameAnswer(expected, answer, image);
        }

        // The raw body with an image content type gives the same answer as the form.
        var first = _served.TestImages[0];
        using var raw = new ByteArrayContent(await File.ReadAllBytesAsync(first));
        raw.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        using var response = await _served.Http.PostAsync("api/predict", raw);
        AssertSameAnswer(_served.Expected[first], await ReadAnswerAsync(response), first);
        AssertNoUploadLeftBehind();
    }

    [Fact]
    public async Task SidewaysPhoneJpegIsPredictedUprightAsTheLibraryDoes()
    {
        // An EXIF-rotated JPEG: the library's reader turns it upright before the model's steps see it (ML.NET's loader ignores EXIF).
        using var temp = new TestData.TempFolder();
        var sideways = temp.File("sideways.jpg");
        File.WriteAllBytes(sideways, BadImages.WithExifOrientation(BadImages.AsymmetricJpeg(), 6));
        using var classifier = ImageClassifier.Load(_served.ZipPath);
        AssertSameAnswer(classifier.Predict(sideways), await PostFormAsync(sideways), sideways);
        AssertNoUploadLeftBehind();
    }

    [SkippableFact]
    public async Task AnswersRealPhotos()
    {
        var photos = new[] { TestData.Hymenoptera, TestData.Caltech }
            .Where(Directory.Exists)
            .Select(root => Directory.EnumerateFiles(root, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).FirstOrDefault())
            .OfType<string>()
            .ToList();
        Skip.If(photos.Count == 0, $"{TestData.SharedData} has no hymenoptera_data or caltech101_6: the shared photo data sets are not beside this clone (see README, Tests).");

        foreach (var photo in photos)
        {
            // The model knows Fashion-MNIST classes only: the answer is well-formed, whatever the label.
            var answer = await PostFormAsync(photo);
            Assert.Contains(answer.Label, _served.Classes);
            Assert.InRange(answer.Probability, 1.0f / _served.Classes.Count, 1.0f);
            Assert.Equal(_served.Classes.Order(), answer.Scores.Select(s => s.Label).Order());
            Assert.Equal(answer.Scores.Select(s => s.Score).OrderDescending(), answer.Scores.Select(s => s.Score));
            Assert.Equal(answer.Label, answer.Scores[0].Label);
            Assert.Equal(1.0, answer.Scores.Sum(s => s.Score), tolerance: 1e-4);
        }
    }

    [Fact]
    public async Task BadUploadsGetA400WithOneClearSentence()
    {
        var fashion = await File.ReadAllBytesAsync(_served.TestImages[0]);
        var gif = "GIF89a"u8.ToArray().Concat(new byte[64]).ToArray();
        // A PNG signature followed by garbage. (A PNG cut short is no good here: the decoder gives what it read.)
        byte[] undecodable = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Encoding.ASCII.GetBytes(new string('x', 500))];
        byte[] Jpeg(int length)
        {
            var bytes = new byte[length];
            (bytes[0], bytes[1], bytes[2]) = ((byte)0xFF, (byte)0xD8, (byte)0xFF);
            return bytes;
        }
        var justTooLarge = Jpeg(20 * 1024 * 1024 + 4096);
        var beyondTheBodyLimit = Jpeg(22 * 1024 * 1024);

        var cases = new (string Name, Func<HttpContent?> Content, string Expected)[]
        {
            ("a text file named .jpg", () => Form(Encoding.UTF8.GetBytes("hello, this is not a photo\n"), "notes.jpg"), "not a JPEG, PNG or BMP"),
            ("an empty body", () => null, "no image"),
            ("an empty raw body with an image type", () => Raw([], "image/jpeg"), "empty"),
            ("an empty file", () => Form([], "empty.jpg"), "empty"),
            ("a form without the image field", () => Form(fashion, "x.png", field: "photo"), "'image'"),
            ("a GIF", () => Form(gif, "anim.gif"), "GIF"),
            ("a PNG that does not decode", () => Form(undecodable, "cut.png"), "corrupt"),
            ("an image just over 20 MB", () => Form(justTooLarge, "huge.jpg"), "20 MB"),
            ("a raw body just over 20 MB", () => Raw(justTooLarge, "image/jpeg"), "20 MB"),
            // Over the server's request body limit, refused from its Content-Length: a client that sends
            // "Expect: 100-continue" (as curl does for large bodies) gets the 400 without sending the body.
            ("a 22 MB image", () => Form(beyondTheBodyLimit, "huger.jpg"), "20 MB"),
            ("text/plain", () => Raw("hello"u8.ToArray(), "text/plain"), "content type"),
        };
        foreach (var (name, content, expected) in cases)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "api/predict") { Content = content() };
            if (request.Content?.Headers.ContentLength > 21 * 1024 * 1024)
                request.Headers.ExpectContinue = true;
            HttpResponseMessage response;
            try
            {
                response = await _served.Http.SendAsync(request);
            }
            catch (HttpRequestException e)
            {
                throw new Xunit.Sdk.XunitException($"{name}: the request failed: {e.Message} ({e.InnerException?.Message})\n{_served.Server.Output}");
            }
            using (response)
            {
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: HTTP {(int)response.StatusCode} {text}");
                Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
                var error = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString()!;
                Assert.True(error.Contains(expected, StringComparison.OrdinalIgnoreCase), $"{name}: '{error}' does not say '{expected}'");
                // One sentence, no stack trace, no exception type.
                Assert.True(error.EndsWith('.') && !error.Contains('\n') && !error.Contains("Exception") && !error.Contains("   at "), $"{name}: '{error}'");
            }
        }

        // The engines survive the failures.
        AssertSameAnswer(_served.Expected[_served.TestImages[0]], await PostFormAsync(_served.TestImages[0]), _served.TestImages[0]);
        AssertNoUploadLeftBehind();
        Assert.DoesNotContain("Unhandled", _served.Server.Output);
    }

    [Fact]
    public async Task PngHeaderClaiming30000x30000IsRefusedFromItsHeader()
    {
        // 74 bytes that a decoder would expand to 3.6 GB of pixels: the library's reader refuses it from the header.
        // The client's timeout only keeps a regression from hanging the test run; it is not a speed check.
        using var http = new HttpClient { BaseAddress = _served.Server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.PostAsync("api/predict", Form(BadImages.HeaderBombPng(30000), "bomb.png"));
        var error = await ReadErrorAsync(response, "the 30000x30000 PNG header");
        Assert.True(error.Contains("30000x30000") && error.Contains("megapixels") && error.Contains("limit of 50"), $"'{error}' does not name the size and the limit");
        Assert.Equal("Healthy", await http.GetStringAsync("health"));
    }

    [Fact]
    public async Task ThreeOversizedHeadersAtOnceAllGet400()
    {
        // Above the 50-megapixel limit but modest, so that the code before the limit (which decoded them) did not
        // take the machine down with it; samples/WebClassifier/hostile-uploads.sh sends the 30000x30000 and
        // 20000x20000 ones and measures the server.
        var uploads = new (string Name, Func<HttpContent> Content)[]
        {
            ("a 12000x12000 PNG header", () => Form(BadImages.HeaderBombPng(12000), "bomb.png")),
            ("a 10000x10000 JPEG header", () => Form(BadImages.HeaderBombJpeg(10000, 10000), "bomb.jpg")),
            ("a raw 9000x9000 PNG header", () => Raw(BadImages.HeaderBombPng(9000), "image/png")),
        };
        using var http = new HttpClient { BaseAddress = _served.Server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var errors = await Task.WhenAll(uploads.Select(u => Task.Run(async () =>
        {
            using var response = await http.PostAsync("api/predict", u.Content());
            return (u.Name, Error: await ReadErrorAsync(response, u.Name));
        })));
        foreach (var (name, error) in errors)
            Assert.True(error.Contains("megapixels") && error.Contains("limit"), $"{name}: '{error}' does not name the limit");
        Assert.Equal("Healthy", await http.GetStringAsync("health"));
        AssertSameAnswer(_served.Expected[_served.TestImages[0]], await PostFormAsync(_served.TestImages[0]), _served.TestImages[0]);
        AssertNoUploadLeftBehind();
    }

    [Fact]
    public async Task MultipartBodyCutBeforeItsClosingBoundaryGets400()
    {
        var png = await File.ReadAllBytesAsync(_served.TestImages[0]);
        var partHeaders = "--cut\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"u8.ToArray();
        var cases = new (string Name, byte[] Body)[]
        {
            ("cut inside the file", [.. partHeaders, .. png.AsSpan(0, png.Length / 2)]),
            ("cut after the file, before its boundary", [.. partHeaders, .. png]),
            ("cut inside the part's headers", partHeaders[..30]),
        };
        foreach (var (name, body) in cases)
        {
            // The Content-Length is right: the body is whole, the multipart in it is not.
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=cut");
            using var response = await _served.Http.PostAsync("api/predict", content);
            var error = await ReadErrorAsync(response, name);
            Assert.True(error.Contains("multipart", StringComparison.OrdinalIgnoreCase), $"{name}: '{error}'");
        }
        Assert.Equal("Healthy", await _served.Http.GetStringAsync("health"));
        AssertNoUploadLeftBehind();
    }

    [Fact]
    public async Task BodyShorterThanItsContentLengthGets400Or408()
    {
        var png = await File.ReadAllBytesAsync(_served.TestImages[0]);
        var part = "--cut\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"u8.ToArray();
        var cases = new (string Name, string ContentType, byte[] Sent, bool HalfClose)[]
        {
            // The client stops sending and waits: Kestrel's minimum body data rate ends the wait.
            ("a form that stops", "multipart/form-data; boundary=cut", [.. part, .. png.AsSpan(0, 100)], false),
            ("a raw image that stops", "image/png", png[..100], false),
            // The client stops sending and closes its side: the body ends early.
            ("a form whose client closes its side", "multipart/form-data; boundary=cut", [.. part, .. png.AsSpan(0, 100)], true),
            ("a raw image whose client closes its side", "image/png", png[..100], true),
        };
        foreach (var (name, contentType, sent, halfClose) in cases)
        {
            var (status, text) = await SendShortBodyAsync(contentType, claimed: sent.Length + 50_000, sent, halfClose);
            // A client that closed its side may find the connection closed without an answer; any answer is a client error.
            Assert.True(status is 400 or 408 || (halfClose && status is null), $"{name}: {(status is null ? "no answer" : $"HTTP {status}")}\n{text}");
        }
        Assert.Equal("Healthy", await _served.Http.GetStringAsync("health"));
        AssertSameAnswer(_served.Expected[_served.TestImages[0]], await PostFormAsync(_served.TestImages[0]), _served.TestImages[0]);
        AssertNoUploadLeftBehind();
        Assert.DoesNotContain("An unhandled exception", _served.Server.Output);
    }

    /// <summary>Sends a request whose body is shorter than its Content-Length, over a raw socket; the status of the answer, or null.</summary>
    private async Task<(int? Status, string Text)> SendShortBodyAsync(string contentType, int claimed, byte[] sent, bool halfClose)
    {
        var address = _served.Server.BaseAddress;
        using var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port);
        var stream = client.GetStream();
        var head = $"POST /api/predict HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: {contentType}\r\nContent-Length: {claimed}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(sent);
        if (halfClose)
            client.Client.Shutdown(SocketShutdown.Send);
        // A hang guard well above Kestrel's minimum-data-rate grace period (5 s).
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
                received.Write(buffer, 0, read);
        }
        catch (IOException)
        {
            // Reset by the server after its answer, or instead of one.
        }
        var text = Encoding.UTF8.GetString(received.ToArray());
        var statusLine = text.Split("\r\n", 2)[0].Split(' ');
        return (statusLine.Length >= 2 && statusLine[0].StartsWith("HTTP/1.", StringComparison.Ordinal) && int.TryParse(statusLine[1], out var status) ? status : null, text);
    }

    /// <summary>The error sentence of a 400 answer (JSON, one sentence); fails the test on anything else.</summary>
    private static async Task<string> ReadErrorAsync(HttpResponseMessage response, string name)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: HTTP {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString()!;
        Assert.True(error.EndsWith('.') && !error.Contains('\n') && !error.Contains("Exception") && !error.Contains("   at "), $"{name}: '{error}'");
        return error;
    }

    [Fact]
    public async Task ConcurrentRequestsGetTheSequentialAnswers()
    {
        var images = Enumerable.Range(0, 16).Select(i => _served.TestImages[i % _served.TestImages.Count]).ToList();
        var sequential = new Dictionary<string, Answer>();
        foreach (var image in images.Distinct())
            sequential[image] = await PostFormAsync(image);

        var concurrent = await Task.WhenAll(images.Select(image => Task.Run(() => PostFormAsync(image))));

        for (int i = 0; i < images.Count; i++)
        {
            var (one, alone) = (concurrent[i], sequential[images[i]]);
            Assert.Equal(alone.Label, one.Label);
            Assert.Equal(alone.Probability, one.Probability, tolerance: 1e-5);
            Assert.Equal(alone.Scores.Select(s => s.Label), one.Scores.Select(s => s.Label));
            AssertSameAnswer(_served.Expected[images[i]], one, images[i]);
        }
        AssertNoUploadLeftBehind();
    }

    [Fact]
    public async Task StopsOnSigtermAndLeavesNoTempFiles()
    {
        // A second server, given the model through MODEL_PATH this time.
        using var server = WebSampleProcess.Start(_served.ZipPath, modelInEnvironment: true);
        // ML.NET's unpacked ONNX file (in a folder of the load's own under the temp folder)
        Assert.Contains(Directory.GetFiles(server.TempFolder.Path, "*", SearchOption.AllDirectories), f => new FileInfo(f).Length > 1_000_000);
        using (var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) })
        {
            using var response = await http.PostAsync("api/predict", Form(await File.ReadAllBytesAsync(_served.TestImages[0]), "a.png"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var exitCode = server.Stop(TimeSpan.FromSeconds(30));
        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{server.Output}");
        var left = Directory.GetFiles(server.TempFolder.Path, "*", SearchOption.AllDirectories).Where(f => new FileInfo(f).Length > 1_000_000 || Path.GetFileName(f).StartsWith("webclassifier-", StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, "left in the temp folder: " + string.Join(", ", left));
    }

    [Fact]
    public void WithoutAModelItSaysSoAndExits()
    {
        var missing = Path.Combine(_served.Temp.Path, "missing.zip");
        var run = Processes.Run(Processes.WebClassifierDll, "--model", missing, "--urls", $"http://127.0.0.1:{WebSampleProcess.FreeTcpPort()}");
        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error:", line);
        Assert.Contains(missing, line);

        var notAModel = Path.Combine(_served.Temp.Path, "notes.zip");
        File.WriteAllText(notAModel, "not a zip");
        run = Processes.Run(Processes.WebClassifierDll, "--model", notAModel, "--urls", $"http://127.0.0.1:{WebSampleProcess.FreeTcpPort()}");
        Assert.Equal(1, run.ExitCode);
        line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: cannot load the model", line);
    }

    [SkippableFact]
    public async Task PageShowsTheApisAnswerInHeadlessChromium()
    {
        var executable = HeadlessChromium.FindExecutable();
        Skip.If(executable is null, "Chromium is not installed (Debian: apt-get install -y chromium; .ci/run installs it): the page was not tested in a browser.");

        using var temp = new TestData.TempFolder();
        var notAnImage = temp.File("notes.jpg");
        await File.WriteAllTextAsync(notAnImage, "hello, this is not a photo\n");
        using var apiError = await _served.Http.PostAsync("api/predict", Form(await File.ReadAllBytesAsync(notAnImage), "notes.jpg"));
        var expectedError = JsonDocument.Parse(await apiError.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();

        using var browser = HeadlessChromium.Start(executable!, BrowserTimeout);
        await using var page = await browser.ConnectToPageAsync(BrowserTimeout);
        await page.SendAsync("Page.enable");
        await page.SendAsync("Page.navigate", new { url = _served.Server.BaseAddress.ToString() });
        await page.WaitForAsync("document.readyState === 'complete' && !!document.getElementById('file') && document.getElementById('model').textContent.includes('model.zip')", "the page and the model's description");

        foreach (var image in _served.TestImages.Take(2))
        {
            await ChooseFileAsync(page, image);
            await page.WaitForAsync("(() => { const p = document.getElementById('preview'); return !p.hidden && p.complete && p.naturalWidth > 0 && !document.getElementById('predict').disabled; })()", "the preview of " + Path.GetFileName(image));
            await page.EvaluateAsync("document.getElementById('predict').click()");
            await page.WaitForAsync("['done', 'error'].includes(document.body.dataset.state)", "the prediction of " + Path.GetFileName(image));

            var shown = await page.EvaluateAsync(
                "({ state: document.body.dataset.state, label: document.getElementById('label').textContent, error: document.getElementById('error').textContent," +
                "   rows: [...document.querySelectorAll('#scores tbody tr')].map(r => r.cells[0].textContent) })");
            Assert.True(shown.GetProperty("state").GetString() == "done", $"{image}: the page shows an error: {shown.GetProperty("error")}");
            var expected = _served.Expected[image];
            Assert.Equal(expected.Label, shown.GetProperty("label").GetString());
            Assert.Equal(expected.Scores.Select(s => s.Label), shown.GetProperty("rows").EnumerateArray().Select(r => r.GetString()));
        }

        // Not an image: the page shows the API's error sentence.
        await ChooseFileAsync(page, notAnImage);
        await page.WaitForAsync("!document.getElementById('predict').disabled", "the Predict button");
        await page.EvaluateAsync("document.getElementById('predict').click()");
        await page.WaitForAsync("['done', 'error'].includes(document.body.dataset.state)", "the answer for a text file");
        Assert.Equal("error", (await page.EvaluateAsync("document.body.dataset.state")).GetString());
        Assert.Equal(expectedError, (await page.EvaluateAsync("document.getElementById('error').textContent")).GetString());
        Assert.Equal("", (await page.EvaluateAsync("document.getElementById('label').textContent")).GetString());

        // WEBSAMPLE_SCREENSHOT=<file.png> keeps a picture of the page, to look at it.
        if (Environment.GetEnvironmentVariable("WEBSAMPLE_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            await ChooseFileAsync(page, _served.TestImages[0]);
            await page.WaitForAsync("!document.getElementById('predict').disabled", "the Predict button");
            await page.EvaluateAsync("document.getElementById('predict').click()");
            await page.WaitForAsync("document.body.dataset.state === 'done'", "the prediction");
            var png = await page.SendAsync("Page.captureScreenshot", new { format = "png" });
            await File.WriteAllBytesAsync(screenshot, Convert.FromBase64String(png.GetProperty("data").GetString()!));
        }
    }

    private static async Task ChooseFileAsync(DevToolsSession page, string path)
    {
        var document = await page.SendAsync("DOM.getDocument", new { depth = 0 });
        var input = await page.SendAsync("DOM.querySelector", new { nodeId = document.GetProperty("root").GetProperty("nodeId").GetInt32(), selector = "#file" });
        await page.SendAsync("DOM.setFileInputFiles", new { files = new[] { path }, nodeId = input.GetProperty("nodeId").GetInt32() });
    }

    private sealed record Answer(string Label, float Probability, IReadOnlyList<(string Label, float Score)> Scores);

    private async Task<Answer> PostFormAsync(string image)
    {
        using var form = Form(await File.ReadAllBytesAsync(image), Path.GetFileName(image));
        using var response = await _served.Http.PostAsync("api/predict", form);
        return await ReadAnswerAsync(response);
    }

    private static async Task<Answer> ReadAnswerAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"HTTP {(int)response.StatusCode}: {text}");
        var root = JsonDocument.Parse(text).RootElement;
        var scores = root.GetProperty("scores").EnumerateArray().Select(s => (s.GetProperty("label").GetString()!, s.GetProperty("score").GetSingle())).ToList();
        return new Answer(root.GetProperty("label").GetString()!, root.GetProperty("probability").GetSingle(), scores);
    }

    private void AssertSameAnswer(ImagePrediction expected, Answer answer, string image)
    {
        Assert.True(expected.Label == answer.Label, $"{image}: the API says {answer.Label}, ImageClassifier {expected.Label}");
        Assert.Equal(expected.Probability, answer.Probability, 1e-4f);
        Assert.Equal(_served.Classes.Count, answer.Scores.Count);
        // Best first, with every class's score as ImageClassifier gives it.
        Assert.Equal(answer.Scores.Select(s => s.Score).OrderDescending(), answer.Scores.Select(s => s.Score));
        var byLabel = expected.Scores.ToDictionary(s => s.Label, s => s.Score);
        foreach (var (label, score) in answer.Scores)
            Assert.Equal(byLabel[label], score, 1e-4f);
    }

    private void AssertNoUploadLeftBehind()
    {
        var uploads = Directory.GetFiles(_served.Server.TempFolder.Path, "webclassifier-upload-*");
        Assert.True(uploads.Length == 0, "uploads left in the server's temp folder: " + string.Join(", ", uploads));
    }

    private static MultipartFormDataContent Form(byte[] bytes, string fileName, string field = "image")
    {
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue(Path.GetExtension(fileName).ToLowerInvariant() switch
        {
            ".png" => "image/png",
            ".jpg" or ".jpeg" => "image/jpeg",
            ".gif" => "image/gif",
            _ => "application/octet-stream",
        });
        return new MultipartFormDataContent { { file, field, fileName } };
    }

    private static ByteArrayContent Raw(byte[] bytes, string contentType)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        return content;
    }
}
