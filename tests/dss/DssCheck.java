// The EU Commission's reference validator (DSS 6.4) run offline over one sealed document,
// with the PEM certificates given as the only trust anchors (the seal's, and for XAdES-T the
// TSA's root): what the tests hold our seals to.
//
//   java -cp .cache/dss/classes:.cache/dss/lib/* DssCheck <signed.xml> <anchor.pem> [<anchor.pem>...]
//
// Prints one "key=value" line each: format, indication, subindication, intact (the
// references' digests match), valid (the signature value verifies), trusted (the chain
// ends at an anchor). No network: no AIA, OCSP or CRL source is configured.

import eu.europa.esig.dss.diagnostic.DiagnosticData;
import eu.europa.esig.dss.diagnostic.SignatureWrapper;
import eu.europa.esig.dss.model.FileDocument;
import eu.europa.esig.dss.model.x509.CertificateToken;
import eu.europa.esig.dss.simplereport.SimpleReport;
import eu.europa.esig.dss.spi.DSSUtils;
import eu.europa.esig.dss.spi.validation.CommonCertificateVerifier;
import eu.europa.esig.dss.spi.x509.CommonTrustedCertificateSource;
import eu.europa.esig.dss.validation.SignedDocumentValidator;
import eu.europa.esig.dss.validation.reports.Reports;

import java.io.File;
import java.nio.file.Files;

public final class DssCheck {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: DssCheck <signed.xml> <anchor.pem> [<anchor.pem>...]");
            System.exit(2);
        }
        CommonTrustedCertificateSource trusted = new CommonTrustedCertificateSource();
        for (int i = 1; i < args.length; i++) {
            // each file one PEM certificate: the seal's anchor, and for XAdES-T the TSA's root
            CertificateToken anchor = DSSUtils.loadCertificate(Files.readAllBytes(new File(args[i]).toPath()));
            trusted.addCertificate(anchor);
        }
        CommonCertificateVerifier verifier = new CommonCertificateVerifier();
        verifier.setTrustedCertSources(trusted);
        verifier.setAIASource(null);
        verifier.setOcspSource(null);
        verifier.setCrlSource(null);

        SignedDocumentValidator validator = SignedDocumentValidator.fromDocument(new FileDocument(args[0]));
        validator.setCertificateVerifier(verifier);
        Reports reports = validator.validateDocument();
        SimpleReport simple = reports.getSimpleReport();
        DiagnosticData diagnostic = reports.getDiagnosticData();
        String id = simple.getFirstSignatureId();
        if (id == null) {
            System.out.println("signatures=0");
            return;
        }
        SignatureWrapper signature = diagnostic.getSignatureById(id);
        System.out.println("signatures=" + simple.getSignaturesCount());
        System.out.println("format=" + simple.getSignatureFormat(id));
        System.out.println("indication=" + simple.getIndication(id));
        System.out.println("subindication=" + simple.getSubIndication(id));
        System.out.println("intact=" + signature.isSignatureIntact());
        System.out.println("valid=" + signature.isSignatureValid());
        System.out.println("trusted=" + signature.isTrustedChain());
    }
}
