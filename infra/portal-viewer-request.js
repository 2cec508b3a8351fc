// CloudFront Function (cloudfront-js-2.0, viewer-request) of the portal's
// default behaviour; infra/gen-template puts this file into template.yaml.
//
// The portal is a single-page app: a reload of /harbor/projects/3 must get
// index.html, which then routes in the browser. The bucket holds only
// index.html and assets/<name>-<hash>.<ext>, so every request that does not
// name a file becomes /index.html:
//   - /assets/...            stays (a hashed file, or a 404 from the bucket);
//   - /harbor and /harbor/... is the app (a repository name in the path may
//     contain dots: /harbor/projects/3/repositories/my.app);
//   - anything else without a file extension in its last segment (/, /x/y)
//     is the app; with one (/favicon.ico) it stays a file.
// The API paths (/v2, /v2/*, /service/*, /api/*, /c/*) have behaviours of
// their own and never reach this function, so an API 404 stays a 404.
function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (uri.indexOf('/assets/') === 0) {
        return request;
    }
    var last = uri.substring(uri.lastIndexOf('/') + 1);
    if (uri === '/harbor' || uri.indexOf('/harbor/') === 0 || !/\.[A-Za-z0-9]+$/.test(last)) {
        request.uri = '/index.html';
    }
    return request;
}
