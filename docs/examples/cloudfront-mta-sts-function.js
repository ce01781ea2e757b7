// CloudFront Function (viewer request) for one distribution serving the MTA-STS policies of many domains
// from the S3 objects that mailsec.mta_sts.policy_s3 writes.
//
//   https://mta-sts.<domain>/.well-known/mta-sts.txt  ->  /mta-sts.<domain>/.well-known/mta-sts.txt
//
// With the distribution's origin path set to /<prefix without its final slash> (or empty for prefix ''),
// the request reaches the object <prefix>mta-sts.<domain>/.well-known/mta-sts.txt.
// CloudFront answers only for the distribution's alternate domain names, so the Host header is one of
// those; the pattern below still refuses anything that is not an mta-sts name before it becomes a path.
// The rewritten URI is also the cache key, so each host has its own cached object.
// Plain ES5: runs on both CloudFront Functions runtimes (cloudfront-js-1.0 and cloudfront-js-2.0).

var POLICY_PATH = '/.well-known/mta-sts.txt';
var POLICY_HOST = /^mta-sts(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

function notFound() {
    return {
        statusCode: 404,
        statusDescription: 'Not Found',
        headers: { 'cache-control': { value: 'max-age=300' } }
    };
}

function handler(event) {
    var request = event.request;
    var host = request.headers.host ? request.headers.host.value.toLowerCase() : '';
    host = host.replace(/:443$/, '').replace(/\.$/, '');
    // Only the exact policy path exists; no redirect, no index, no other file.
    if (request.uri !== POLICY_PATH || !POLICY_HOST.test(host)) {
        return notFound();
    }
    request.uri = '/' + host + POLICY_PATH;
    request.querystring = {};
    return request;
}
